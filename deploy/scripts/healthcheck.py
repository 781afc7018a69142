#!/usr/bin/env python3
"""Container health checks for Soundhive's processes (used by deploy/Dockerfile and compose.yaml).

    healthcheck.py http URL              # 2xx within the timeout (API /readyz, worker /metrics)
    healthcheck.py outbox [--max-age S]  # the scheduler's relay keeps up: no domain event has
                                         # waited longer than S seconds (default 120)

Exit 0 when healthy, 1 otherwise, with one line saying why (Docker keeps it in `inspect`).
Standard library plus psycopg (already in the image); no shell or curl needed.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request


def check_http(url: str, timeout: float) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 300, f"{url}: {response.status}"
    except urllib.error.HTTPError as exc:
        return False, f"{url}: {exc.code}"
    except OSError as exc:
        return False, f"{url}: {type(exc).__name__}: {exc}"


def check_outbox(max_age: float, timeout: float) -> tuple[bool, str]:
    """Healthy when the oldest unrelayed event is younger than ``max_age`` seconds."""
    import psycopg

    url = os.environ.get("SOUNDHIVE_DATABASE_URL", "")
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            url = "postgresql://" + url[len(prefix) :]
    if not url:
        return False, "SOUNDHIVE_DATABASE_URL is not set"
    try:
        with psycopg.connect(url, connect_timeout=max(1, int(timeout))) as conn:
            row = conn.execute(
                "SELECT coalesce(extract(epoch FROM now() - min(occurred_at)), 0) "
                "FROM core_outbox WHERE relayed_at IS NULL"
            ).fetchone()
    except psycopg.Error as exc:
        return False, f"database: {type(exc).__name__}"
    lag = float(row[0]) if row else 0.0
    return lag <= max_age, f"oldest unrelayed event: {lag:.0f} s (limit {max_age:.0f} s)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=4.0)
    sub = parser.add_subparsers(dest="mode", required=True)
    http = sub.add_parser("http")
    http.add_argument("url")
    outbox = sub.add_parser("outbox")
    outbox.add_argument("--max-age", type=float, default=120.0)
    args = parser.parse_args(argv)
    if args.mode == "http":
        ok, message = check_http(args.url, args.timeout)
    else:
        ok, message = check_outbox(args.max_age, args.timeout)
    print(("healthy: " if ok else "unhealthy: ") + message)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
