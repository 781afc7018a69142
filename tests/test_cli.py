"""The ``soundhive`` command line, run as a user would: real subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import httpx

from core.app import create_app
from core.testing.live import LiveServer


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_skills_lists_state_dependencies_and_contributions(soundhive_env: dict[str, str]) -> None:
    result = run({**soundhive_env, "SOUNDHIVE_SKILLS_DISABLED": "dev-auth-issuer"}, "skills")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "hello 0.1.0 [enabled]" in out
    assert "requires:   auth-jwt-verify" in out
    assert "POST /api/v1/hello/greetings" in out
    assert "actors:     hello.tally" in out
    assert "cache keys: hello (60s)" in out
    assert "dev-auth-issuer" in out and "[disabled]" in out


def test_enabling_a_skill_whose_dependency_is_disabled_fails_naming_both(
    soundhive_env: dict[str, str],
) -> None:
    result = run({**soundhive_env, "SOUNDHIVE_SKILLS_DISABLED": "auth-jwt-verify"}, "skills")
    assert result.returncode == 2
    assert "skill 'hello' requires 'auth-jwt-verify', which is disabled" in result.stderr


def test_bad_configuration_is_a_clear_error(soundhive_env: dict[str, str]) -> None:
    result = run(
        {**soundhive_env, "SOUNDHIVE_ENV": "prod", "SOUNDHIVE_CORS_ORIGINS": "*"}, "skills"
    )
    assert result.returncode == 2
    assert result.stderr.startswith("configuration error: ")
    assert "wildcard CORS" in result.stderr


def test_cache_keys_lists_owner_and_ttl(soundhive_env: dict[str, str]) -> None:
    result = run(soundhive_env, "cache-keys")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:]}
    assert lines["sh:hello:*"][1:3] == ["hello", "60s"]
    assert lines["sh:ratelimit:*"][1] == "core"


def test_migrate_upgrades_enabled_skills(
    soundhive_env: dict[str, str], migrated_database: str
) -> None:
    result = run(soundhive_env, "migrate")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("migrated: core")
    assert "hello" in result.stdout


def test_disabling_a_skill_removes_its_routes(make_settings: Any, migrated_database: str) -> None:
    with LiveServer(create_app(make_settings(skills_disabled=["hello"]))) as server:
        spec = httpx.get(server.url + "/openapi.json").json()
        assert not any(path.startswith("/api/v1/hello") for path in spec["paths"])
        r = httpx.post(server.url + "/api/v1/hello/greetings", json={"name": "x"})
        assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"
    with LiveServer(create_app(make_settings())) as server:
        spec = httpx.get(server.url + "/openapi.json").json()
        assert "/api/v1/hello/greetings" in spec["paths"]


def test_worker_supervisor_replaces_a_killed_process(soundhive_env: dict[str, str]) -> None:
    import signal
    import time

    import psutil

    from core.testing.plugin import wait_for

    proc = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "worker", "--processes", "2", "--threads", "1"],
        env={**os.environ, **soundhive_env},
    )
    try:
        parent = psutil.Process(proc.pid)

        def workers() -> list[psutil.Process]:
            alive = []
            for child in parent.children():
                try:
                    if child.status() != psutil.STATUS_ZOMBIE and "spawn" in " ".join(
                        child.cmdline()
                    ):
                        alive.append(child)
                except psutil.Error:
                    continue
            return alive

        first = wait_for(lambda: len(workers()) == 2 and workers(), timeout=30)
        victim = first[0].pid
        first[0].send_signal(signal.SIGKILL)
        replaced = wait_for(
            lambda: len(w := workers()) == 2 and victim not in {c.pid for c in w} and w, timeout=30
        )
        assert len(replaced) == 2 and proc.poll() is None
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        time.sleep(0.1)
    assert proc.returncode is not None
