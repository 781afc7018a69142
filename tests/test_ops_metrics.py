"""/metrics: the seed's monitoring list (000 §14) under stable names, summed over API worker
processes and Dramatiq worker processes, and in step with the docs and the Grafana dashboard."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.parser import text_string_to_metric_families

from core import metrics
from core.embedded import free_port
from core.testing.plugin import wait_for
from tests.ops_support import ROOT, serve, soundhive, wait_http

SEED_LIST = {
    # seed 000 §14 (monitoring) → the series that answer it
    "API error rate": ["soundhive_http_requests_total", "soundhive_http_errors_total"],
    "latency per route": ["soundhive_http_request_duration_seconds"],
    "DB query time": ["soundhive_db_query_duration_seconds"],
    "Redis hit ratio": ["soundhive_cache_requests_total"],
    "S3 upload failures": ["soundhive_storage_failures_total"],
    "job outcomes": ["soundhive_jobs_total", "soundhive_job_duration_seconds"],
    "CPU/memory": ["process_cpu_seconds_total", "process_resident_memory_bytes"],
}


def declared() -> dict[str, Any]:
    """Every metric core/metrics.py defines, by exposition name."""
    found = {}
    for value in vars(metrics).values():
        if isinstance(value, (Counter, Gauge, Histogram)):
            name = value._name + ("_total" if isinstance(value, Counter) else "")
            found[name] = value
    return found


def scrape(url: str) -> dict[str, list[Any]]:
    """Samples by sample name (``x_total``, ``x_bucket`` …) from a /metrics page."""
    text = httpx.get(url, timeout=10).text
    samples: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text):
        samples.setdefault(family.name, [])
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def total(samples: Iterable[Any], **labels: str) -> float:
    return sum(s.value for s in samples if all(s.labels.get(k) == v for k, v in labels.items()))


def test_names_are_stable_documented_and_on_the_dashboard() -> None:
    names = declared()
    for need in SEED_LIST.values():
        for name in need:
            assert name in names or name.startswith("process_"), name
    operations = (ROOT / "docs" / "operations.md").read_text()
    undocumented = [name for name in names if name not in operations]
    assert not undocumented, f"document these in docs/operations.md: {undocumented}"

    dashboard = json.loads((ROOT / "deploy" / "grafana" / "soundhive-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 8
    known = set(names) | {n.removesuffix("_total") for n in names}
    used = set()
    for expr in exprs:
        for series in re.findall(r"\b((?:soundhive|process)_[a-z_]+)", expr):
            base = re.sub(r"_(bucket|sum|count)$", "", series)
            used.add(base)
            assert base in known or base.startswith("process_"), f"unknown series {series}"
    for need in SEED_LIST.values():
        assert any(
            n.removesuffix("_total") in {u.removesuffix("_total") for u in used} for n in need
        )

    scrape_config = (ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text()
    for target in ("api:8000", "worker:9191"):
        assert target in scrape_config


def test_api_metrics_answer_the_seed_list(api: Any, live_server: Any) -> None:
    url = f"{live_server.url}/metrics"
    before = scrape(url)
    me = api.auth("metric-user")
    profile = api.get("/api/v1/users/me", headers=me).json()
    for _ in range(2):  # a miss, then a hit in the profile cache
        assert api.get(f"/api/v1/users/{profile['id']}", headers=me).status_code == 200
    assert api.get(f"/api/v1/users/{'0' * 8}-0000-0000-0000-{'0' * 12}").status_code in (401, 404)
    after = scrape(url)

    def delta(name: str, **labels: str) -> float:
        return total(after.get(name, []), **labels) - total(before.get(name, []), **labels)

    assert delta("soundhive_http_requests_total", route="/api/v1/users/me", status="200") == 1
    assert delta("soundhive_http_requests_total", route="/api/v1/users/{user_id}") >= 3
    assert (
        delta("soundhive_http_request_duration_seconds_count", route="/api/v1/users/{user_id}") >= 3
    )
    assert delta("soundhive_db_query_duration_seconds_count", verb="SELECT") > 0
    assert delta("soundhive_cache_requests_total", result="hit") >= 1
    assert delta("soundhive_cache_requests_total", result="miss") >= 1
    for family in ("soundhive_jobs_total", "soundhive_storage_failures_total"):
        assert family.removesuffix("_total") in after  # declared even before the first sample
    assert total(after["process_resident_memory_bytes"]) > 10_000_000
    assert total(after["process_cpu_seconds_total"]) > 0


def test_process_group_collector_reports_live_processes(tmp_path: Path) -> None:
    from prometheus_client import generate_latest
    from prometheus_client.mmap_dict import MmapedDict

    me = os.getpid()
    for pid in (me, 999999999):  # this process, and one that has exited
        MmapedDict(str(tmp_path / f"counter_{pid}.db")).close()
    collector = metrics.ProcessGroupCollector(str(tmp_path))
    assert collector.pids() == [me]
    families = {f.name: f for f in collector.collect()}
    assert {s.labels["pid"] for s in families["process_resident_memory_bytes"].samples} == {str(me)}
    assert families["process_cpu_seconds"].samples[0].value > 0
    text = generate_latest(metrics.multiprocess_registry(str(tmp_path))).decode()
    assert f'process_resident_memory_bytes{{pid="{me}"}}' in text


def test_prepare_multiprocess_dirs(tmp_path: Path) -> None:
    saved = os.environ.pop(metrics.MULTIPROC_ENV, None)
    try:
        assert metrics.prepare_multiprocess(1) is None
        assert metrics.MULTIPROC_ENV not in os.environ
        made = metrics.prepare_multiprocess(3)  # a private directory for the children
        assert made and os.environ[metrics.MULTIPROC_ENV] == made and Path(made).is_dir()
        os.environ[metrics.MULTIPROC_ENV] = str(tmp_path)  # the operator's: stale files go
        (tmp_path / "counter_999999999.db").write_bytes(b"")
        (tmp_path / f"counter_{os.getpid()}.db").write_bytes(b"")
        (tmp_path / "keep.txt").write_text("x")
        assert metrics.prepare_multiprocess(1) == str(tmp_path)
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            f"counter_{os.getpid()}.db",
            "keep.txt",
        ]
    finally:
        os.environ.pop(metrics.MULTIPROC_ENV, None)
        if saved is not None:
            os.environ[metrics.MULTIPROC_ENV] = saved


@pytest.mark.integration
def test_serve_with_workers_reports_the_sum_of_all_processes(
    soundhive_env: dict[str, str], migrated_database: str, tmp_path: Path
) -> None:
    env = {**os.environ, **soundhive_env, "SOUNDHIVE_DATA_DIR": str(tmp_path / "data")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with serve(env, tmp_path, "--workers", "2") as url:
        hits = 24
        for _ in range(hits):  # a new connection each: both workers take some
            assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200
        scrapes = [scrape(f"{url}/metrics") for _ in range(4)]
    for samples in scrapes:  # whichever worker answers, it reports both
        assert total(samples["soundhive_http_requests_total"], route="/readyz") == hits
        pids = {s.labels["pid"] for s in samples["process_resident_memory_bytes"]}
        assert len(pids) >= 2, pids
        assert total(samples["soundhive_http_requests_in_flight"]) >= 0


def test_worker_metrics_server_is_off_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.worker import start_metrics_server

    monkeypatch.setenv("SOUNDHIVE_WORKER_METRICS_PORT", "")
    assert start_metrics_server() is None
    port = free_port()
    monkeypatch.setenv("SOUNDHIVE_WORKER_METRICS_PORT", str(port))
    server: Any = start_metrics_server()
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    finally:
        server.shutdown()
        server.server_close()
    assert "# TYPE soundhive_jobs_total counter" in text
    assert "process_resident_memory_bytes" in text


@pytest.mark.integration
def test_worker_serves_its_own_metrics(
    soundhive_env: dict[str, str],
    migrated_database: str,
    make_settings: Any,
    tmp_path: Path,
    clean_state: None,
) -> None:
    from core.kernel import Kernel

    port = free_port()
    env = {
        **os.environ,
        **soundhive_env,
        "SOUNDHIVE_WORKER_METRICS_PORT": str(port),
        "SOUNDHIVE_DATA_DIR": str(tmp_path / "data"),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = soundhive(["worker", "--processes", "2", "--threads", "1"], env, tmp_path / "w.log")
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        wait_http(url, proc)

        def both_children() -> Any:
            samples = scrape(url)
            pids = {s.labels["pid"] for s in samples.get("process_cpu_seconds_total", [])}
            return samples if len(pids) == 2 else None

        wait_for(both_children, timeout=45, interval=0.5)
        Kernel(make_settings()).send("music-upload.reap")

        def counted() -> Any:
            samples = scrape(url)
            done = total(
                samples.get("soundhive_jobs_total", []),
                actor="music-upload.reap",
                outcome="success",
            )
            return samples if done == 1 else None

        samples = wait_for(counted, timeout=45, interval=0.3)
        assert (
            total(samples["soundhive_job_duration_seconds_count"], actor="music-upload.reap") == 1
        )
    finally:
        proc.stop()
    assert not proc.alive()
