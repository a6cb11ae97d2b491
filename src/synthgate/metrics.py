"""Prometheus metrics, exported on ``/metrics``."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter("synthgate_http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_SECONDS = Histogram("synthgate_http_request_seconds", "HTTP request duration", ["route"])
GENERATIONS = Counter("synthgate_generations_total", "Delivered generations", ["service", "mode"])
REFUSALS = Counter("synthgate_refusals_total", "Refused requests", ["service", "reason"])
STAGE_SECONDS = Histogram(
    "synthgate_stage_seconds",
    "Time spent per pipeline stage",
    ["stage"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
PIPELINE_FAILURES = Counter(
    "synthgate_pipeline_failures_total", "Pipeline failures (not refusals)", ["stage"]
)
