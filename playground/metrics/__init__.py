"""Prometheus metrics (docs/metrics.md): the counters the processes increment (:mod:`.instruments`),
what a scrape computes from the database and the agent (:mod:`.collectors`) and ``/metrics`` (:mod:`.views`).

:mod:`.instruments` imports only prometheus_client, so any part of the web tier may import it;
the collectors and the view import playground.sandboxes, playground.config and sandbox.wire.
"""
