"""Reading a stack's ``/metrics`` in tests: its text, parsed by prometheus_client's own parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.stack import Stack

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]  # by name and labels


def scrape(stack: Stack) -> tuple[str, Samples]:
    """The text of the stack's ``/metrics`` (a 200, asked from loopback) and its samples."""
    response = stack.request("GET", "/metrics")
    assert response.status == 200, response.body
    text = response.body.decode()
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples that have ``labels`` (0 when there are none)."""
    wanted = set(labels.items())
    return sum(v for (n, found), v in samples.items() if n == name and wanted <= found)
