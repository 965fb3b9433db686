"""Summaries of timed samples, and the loops that take them: warm-up runs first, then each
method once per round when several are compared, so that the machine's load weighs on all alike."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import TypeVar

WARMUP = 2  # runs of each method before the measured ones
T = TypeVar("T")


def percentile(samples: list[float], fraction: float) -> float:
    """The sample at ``fraction`` (0-1) of the ordered samples, nearest rank."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def summary(samples: list[float]) -> dict[str, float]:
    """Median, p95, p99, minimum and maximum of ``samples`` (seconds), in milliseconds."""
    return {
        "runs": len(samples),
        "median_ms": statistics.median(samples) * 1000,
        "p95_ms": percentile(samples, 0.95) * 1000,
        "p99_ms": percentile(samples, 0.99) * 1000,
        "min_ms": min(samples) * 1000,
        "max_ms": max(samples) * 1000,
    }


def print_summary(name: str, result: dict[str, float]) -> None:
    print(f"  {name:<34} median {result['median_ms']:7.1f} ms   p95 {result['p95_ms']:7.1f} ms", flush=True)


def measured_runs(runs: int, one: Callable[[int], T]) -> list[T]:
    """``one(i)`` for ``WARMUP`` runs (i < 0), then ``runs`` measured ones (i from 0); the measured results."""
    for i in range(WARMUP):
        one(-1 - i)
    return [one(i) for i in range(runs)]


def measure(name: str, runs: int, one: Callable[[int], float]) -> dict[str, float]:
    """The summary of ``measured_runs`` of ``one`` (seconds), printed."""
    result = summary(measured_runs(runs, one))
    print_summary(name, result)
    return result


def measure_alternately(runs: int, methods: dict[str, Callable[[int], float]]) -> list[dict[str, float]]:
    """As ``measure`` for several methods, one run of each in turn; their summaries in order."""
    samples: dict[str, list[float]] = {name: [] for name in methods}
    for i in range(-WARMUP, runs):
        for name, one in methods.items():
            elapsed = one(i)
            if i >= 0:
                samples[name].append(elapsed)
    results = [summary(s) for s in samples.values()]
    for name, result in zip(methods, results, strict=True):
        print_summary(name, result)
    return results
