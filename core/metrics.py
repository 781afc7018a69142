"""Prometheus metrics with stable names; documented in docs/operations.md."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "soundhive_http_requests_total",
    "HTTP requests by route template",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "soundhive_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10),
)
HTTP_ERRORS = Counter(
    "soundhive_http_errors_total", "HTTP responses with status >= 500 by route", ["method", "route"]
)
HTTP_IN_FLIGHT = Gauge("soundhive_http_requests_in_flight", "Requests being served now")
DB_QUERY_SECONDS = Histogram(
    "soundhive_db_query_duration_seconds",
    "Database statement time by verb",
    ["verb"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
)
CACHE_REQUESTS = Counter(
    "soundhive_cache_requests_total",
    "Cache look-ups by namespace and result",
    ["namespace", "result"],
)
CACHE_ERRORS = Counter("soundhive_cache_errors_total", "Redis failures seen by the cache")
RATE_LIMITED = Counter("soundhive_rate_limited_total", "Requests refused by the rate limiter")
JOBS = Counter("soundhive_jobs_total", "Background job outcomes", ["actor", "outcome"])
OUTBOX_RELAYED = Counter("soundhive_outbox_relayed_total", "Domain events relayed to the broker")
OUTBOX_PENDING = Gauge("soundhive_outbox_pending", "Domain events waiting for the broker")
STORAGE_FAILURES = Counter(
    "soundhive_storage_failures_total", "Object storage failures by operation", ["operation"]
)
