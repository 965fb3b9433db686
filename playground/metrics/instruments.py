"""The counters, histograms and gauges the web tier's processes update as things happen.

Each process (Daphne, the Celery worker's children, the port proxy's workers, the registry front,
a management command) updates its own values; with ``PROMETHEUS_MULTIPROC_DIR`` set (the launcher
gives every part ``<data>/metrics``, emptied at each start) they are kept in files there, one per
process, and ``/metrics`` adds them up (:mod:`playground.metrics.collectors`). Without it (the fast
tests) they live in the process's memory. An update is an increment: nothing here may do I/O
beyond that, since terminals count their bytes per chunk and the port proxy per request.

Imports only prometheus_client.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# API to first prompt: the warm pool answers in tens of milliseconds, a cold docker sandbox in
# about a second, a busy host in several.
PROMPT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
CHECK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

SESSIONS_CREATED = Counter("playground_session_creations", "Sessions started (the API, a workshop's join).")
FIRST_PROMPT = Histogram(
    "playground_session_first_prompt_seconds",
    "From a session's creation to the first output its first viewer was sent (its prompt).",
    buckets=PROMPT_BUCKETS,
)
SESSIONS_ENDED = Counter(
    "playground_session_endings", "Sessions whose end was claimed, by reason (deleted, expired...).", ["reason"]
)
WARM_POOL = Counter(
    "playground_warm_pool_creates",
    "Sandboxes the agent created for nodes: result hit (taken from the warm pool) or miss (started cold).",
    ["result"],
)
TERMINALS_OPEN = Gauge(
    "playground_terminals_open", "Terminal viewers attached to a sandbox's terminal now.", multiprocess_mode="livesum"
)
TERMINAL_BYTES = Counter(
    "playground_terminal_bytes",
    "Bytes between browsers and terminals: direction in (typed) or out (shown).",
    ["direction"],
)
LAB_CHECKS = Counter(
    "playground_lab_checks", "Lab step checks run, by verdict (passed, not_yet, timed_out, ...).", ["verdict"]
)
LAB_CHECK_SECONDS = Histogram(
    "playground_lab_check_duration_seconds", "How long a lab check's script ran in the sandbox.", buckets=CHECK_BUCKETS
)
PORT_REQUESTS = Counter("playground_port_link_requests", "HTTP requests to port links (the port proxy).")
PORT_ERRORS = Counter(
    "playground_port_link_errors",
    "Port-link requests the proxy answered with its own error page, by status.",
    ["status"],
)
REGISTRY_PULLS = Counter(
    "playground_registry_pull_requests",
    "Pull requests (GET, HEAD) the registry mirror's front passed on, by kind.",
    ["kind"],
)
REGISTRY_BLOBS = Counter(
    "playground_registry_blob_requests",
    "Blob pulls at the registry mirror's front: cache hit (on the store's disk), miss (fetched), waited (on a miss).",
    ["cache"],
)
WORKER_PROCESSES = Gauge(
    "playground_celery_worker_processes", "Celery worker pool processes alive.", multiprocess_mode="livesum"
)


def known(metric: Counter, *values: str) -> None:
    """Make ``metric``'s series for each label value exist at 0 before the first increment, so that
    ``rate()`` sees that increment and a dashboard shows 0 rather than nothing."""
    for value in values:
        metric.labels(value)


known(WARM_POOL, "hit", "miss")
known(TERMINAL_BYTES, "in", "out")
known(PORT_ERRORS, "502", "503")  # the failing port links' alert's; other statuses appear when they happen
known(REGISTRY_PULLS, "blob", "other")
known(REGISTRY_BLOBS, "hit", "miss", "waited")
