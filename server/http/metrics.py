"""Prometheus metrics: verify outcomes by answer type, and their latency; requests refused by rate limits.

Under `tokenward serve` (several gunicorn workers) `PROMETHEUS_MULTIPROC_DIR` is set and `/metrics` adds up
every worker's figures.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

VERIFY_OUTCOMES = Counter(
    "tokenward_verify_total",
    "Verify attempts by answer type and outcome (success or error code)",
    ["answer", "outcome"],
)
VERIFY_SECONDS = Histogram(
    "tokenward_verify_duration_seconds",
    "Time to check a verify answer",
    ["answer"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)

RATE_LIMIT_REFUSALS = Counter(
    "tokenward_ratelimit_refused_total",
    "Requests refused by a rate limit, by limit (ip or user) and endpoint",
    ["limit", "endpoint"],
)


def observe_refusal(limit: str, endpoint: str) -> None:
    RATE_LIMIT_REFUSALS.labels(limit=limit, endpoint=endpoint).inc()


def observe_verify(answer: str, outcome: str, seconds: float) -> None:
    VERIFY_OUTCOMES.labels(answer=answer, outcome=outcome).inc()
    VERIFY_SECONDS.labels(answer=answer).observe(seconds)


def exposition() -> bytes:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest()
