"""Prometheus metrics of the RADIUS door: answers by result and reason, dropped packets, latency.

`tokenward radius serve` runs several worker processes with `PROMETHEUS_MULTIPROC_DIR` set; its
`--metrics HOST:PORT` adds up every worker's figures on one `/metrics`.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

RADIUS_ANSWERS = Counter(
    "tokenward_radius_answers_total",
    "Access-Requests answered, by result (accept, reject, challenge) and reason (an error code or empty)",
    ["result", "reason"],
)
RADIUS_DROPPED = Counter(
    "tokenward_radius_dropped_total",
    "Datagrams dropped without an answer, by reason (malformed, unknown_client, bad_message_authenticator…)",
    ["reason"],
)
RADIUS_DUPLICATES = Counter(
    "tokenward_radius_duplicates_total", "Retransmitted requests answered from the duplicate cache"
)
RADIUS_SECONDS = Histogram(
    "tokenward_radius_duration_seconds",
    "Time to answer an Access-Request",
    ["result"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)


def observe_answer(result: str, reason: str, seconds: float) -> None:
    RADIUS_ANSWERS.labels(result=result, reason=reason).inc()
    RADIUS_SECONDS.labels(result=result).observe(seconds)


def observe_drop(reason: str) -> None:
    RADIUS_DROPPED.labels(reason=reason).inc()
