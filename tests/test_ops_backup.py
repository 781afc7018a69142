"""The recovery drill of docs/backup-recovery.md, run for real: seed a database and a local
object store through the API, `soundhive backup`, lose everything (database dropped, data
directory deleted, Redis flushed), `soundhive restore` into a brand-new empty database, start a
new API on it — and it must serve the same users, tracks (same audio bytes), playlists,
comments and counts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from core.backup import BackupError, find_pg_tools, read_manifest, table_counts
from core.testing.live import LiveServer
from core.testing.services import plain_url, with_database
from tests.music_helpers import ready_track, sql

pytestmark = pytest.mark.integration


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def admin(url: str, statement: str) -> None:
    with psycopg.connect(plain_url(url), autocommit=True) as conn:
        conn.execute(statement)


@pytest.fixture
def drill(
    soundhive_services: Any, make_settings: Callable[..., Any], clean_state: None, tmp_path: Path
) -> Iterator[SimpleNamespace]:
    """A database and data directory of the drill's own (the session's are never touched)."""
    from core.kernel import Kernel
    from core.migrate import upgrade

    name = f"soundhive_drill_{os.getpid()}"
    admin(soundhive_services.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin(soundhive_services.admin_url, f'CREATE DATABASE "{name}"')
    url = with_database(soundhive_services.admin_url, name)
    data_dir = tmp_path / "data"
    settings = make_settings(database_url=url, data_dir=str(data_dir))
    upgrade(Kernel(settings))
    try:
        yield SimpleNamespace(
            name=name,
            database_url=url,
            redis_url=soundhive_services.redis_url,
            admin_url=soundhive_services.admin_url,
            data_dir=data_dir,
            settings=settings,
            env={
                "SOUNDHIVE_DATABASE_URL": url,
                "SOUNDHIVE_REDIS_URL": soundhive_services.redis_url,
                "SOUNDHIVE_DATA_DIR": str(data_dir),
                "SOUNDHIVE_ENV": "test",
                "SOUNDHIVE_LOG_LEVEL": "WARNING",
            },
        )
    finally:
        admin(soundhive_services.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def served(settings: Any) -> LiveServer:
    from core.app import create_app

    return LiveServer(create_app(settings)).start()


def seed(api: httpx.Client, drill: Any, auth: Callable[[str], dict[str, str]]) -> dict[str, Any]:
    """Three people, two ready tracks with audio, follows, likes, a comment, plays, a playlist."""
    alice, bob, carol = auth("alice"), auth("bob"), auth("carol")
    ids = {}
    for who, headers in (("alice", alice), ("bob", bob), ("carol", carol)):
        r = api.patch(
            "/api/v1/users/me",
            json={"handle": who, "display_name": who.title(), "bio": f"{who} makes music"},
            headers=headers,
        )
        assert r.status_code == 200, r.text
        ids[who] = r.json()["id"]
    first = ready_track(api, drill, alice, title="First light", tags=["ambient"], mood="calm")
    second = ready_track(api, drill, alice, title="Second wind", tags=["lofi"])
    for headers in (bob, carol):
        assert api.post(f"/api/v1/users/{ids['alice']}/follow", headers=headers).is_success
    assert api.post(f"/api/v1/users/{ids['carol']}/follow", headers=bob).is_success
    for headers, track in ((bob, first), (carol, first), (carol, second)):
        assert api.post(f"/api/v1/tracks/{track['id']}/like", headers=headers).is_success
    comment = api.post(
        f"/api/v1/tracks/{first['id']}/comments",
        json={"body": "그 드럼 소리 최고", "position_ms": 1500},
        headers=bob,
    )
    assert comment.status_code == 201, comment.text
    assert api.post(
        f"/api/v1/tracks/{first['id']}/play", json={"played_ms": 170_000}, headers=bob
    ).is_success
    playlist = api.post("/api/v1/playlists", json={"title": "Mornings"}, headers=bob)
    assert playlist.status_code == 201, playlist.text
    for track in (second, first):
        r = api.post(
            f"/api/v1/playlists/{playlist.json()['id']}/tracks",
            json={"track_id": track["id"]},
            headers=bob,
        )
        assert r.is_success, r.text
    return {"users": ids, "tracks": [first["id"], second["id"]], "playlist": playlist.json()["id"]}


def normalise(value: Any) -> Any:
    """Signed URLs differ in host, port, expiry and signature: compare their paths."""
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return urlsplit(value).path
    return value


def snapshot(api: httpx.Client, seeded: dict[str, Any], viewer: dict[str, str]) -> dict[str, Any]:
    """What a client sees, plus the bytes behind every stream URL."""
    pages = {}
    paths = [f"/api/v1/users/{uid}" for uid in seeded["users"].values()]
    paths += [f"/api/v1/users/{uid}/tracks" for uid in seeded["users"].values()]
    paths += [f"/api/v1/users/{seeded['users']['alice']}/followers"]
    paths += [f"/api/v1/users/{seeded['users']['bob']}/playlists"]
    paths += [f"/api/v1/tracks/{tid}" for tid in seeded["tracks"]]
    paths += [f"/api/v1/tracks/{tid}/comments" for tid in seeded["tracks"]]
    paths += [f"/api/v1/playlists/{seeded['playlist']}", "/api/v1/users/me/history"]
    for path in paths:
        r = api.get(path, headers=viewer)
        assert r.status_code == 200, f"{path}: {r.status_code} {r.text}"
        pages[path] = normalise(r.json())
    audio = {}
    for tid in seeded["tracks"]:
        url = api.get(f"/api/v1/tracks/{tid}", headers=viewer).json()["stream_url"]
        got = httpx.get(url, timeout=30)
        assert got.status_code == 200
        audio[tid] = got.content
    return {"pages": pages, "audio": audio}


def test_recovery_drill_restores_what_the_api_serves(drill: Any, jwks_server: Any) -> None:
    def auth(sub: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {jwks_server.mint(sub)}"}

    bob = auth("bob")
    server = served(drill.settings)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as api:
            seeded = seed(api, drill, auth)
            before = snapshot(api, seeded, bob)
        rows_before = table_counts(drill.database_url)

        backup_dir = drill.data_dir.parent / "backup"
        made = run_cli(drill.env, "backup", "--output", str(backup_dir))
        assert made.returncode == 0, made.stderr
        manifest = read_manifest(backup_dir)
        assert manifest["tables"] == rows_before
        assert manifest["objects"]["copied"] and manifest["objects"]["count"] >= 2
        assert manifest["alembic_revisions"]
        assert (
            run_cli(drill.env, "backup", "--output", str(backup_dir)).returncode == 1
        )  # not empty

        refused = run_cli(drill.env, "restore", "--input", str(backup_dir))
        assert refused.returncode == 1 and "not empty" in refused.stderr
    finally:
        server.stop()

    # the disaster: database, stored objects (and the data dir's keys) and cache all gone
    admin(drill.admin_url, f'DROP DATABASE "{drill.name}" WITH (FORCE)')
    admin(drill.admin_url, f'CREATE DATABASE "{drill.name}"')
    shutil.rmtree(drill.data_dir)
    import redis

    redis.Redis.from_url(drill.redis_url).flushdb()
    assert table_counts(drill.database_url) == {}

    # recovery order: database → storage (restore does both, in that order) → API
    restored = run_cli(drill.env, "restore", "--input", str(backup_dir))
    assert restored.returncode == 0, restored.stderr
    assert "counts verified" in restored.stdout
    assert table_counts(drill.database_url) == rows_before

    server = served(drill.settings)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as api:
            after = snapshot(api, seeded, bob)
            # and it keeps working: a new like lands on the restored counters
            liked = api.post(f"/api/v1/tracks/{seeded['tracks'][1]}/like", headers=bob)
            assert liked.is_success
            detail = api.get(f"/api/v1/tracks/{seeded['tracks'][1]}", headers=bob).json()
    finally:
        server.stop()
    assert after["audio"] == before["audio"]
    for path, page in before["pages"].items():
        assert after["pages"][path] == page, path
    alice = before["pages"][f"/api/v1/users/{seeded['users']['alice']}"]
    assert (alice["followers_count"], alice["tracks_count"]) == (2, 2)
    assert (
        detail["like_count"]
        == before["pages"][f"/api/v1/tracks/{seeded['tracks'][1]}"]["like_count"] + 1
    )


def test_restore_refuses_a_damaged_backup(drill: Any, tmp_path: Path) -> None:
    from core.backup import backup, restore

    backup_dir = tmp_path / "b"
    manifest = backup(drill.settings, backup_dir)
    assert set(manifest["files"]) == {"database.dump", "objects.tar"}
    assert json.loads((backup_dir / "manifest.json").read_text()) == manifest
    assert (backup_dir / "database.dump").stat().st_mode & 0o777 == 0o600
    report = restore(drill.settings, backup_dir, replace=True)  # the drill DB: only migrations
    assert report["rows"] == sum(manifest["tables"].values())
    with (backup_dir / "database.dump").open("ab") as handle:
        handle.write(b"bit rot")
    with pytest.raises(BackupError, match="checksum"):
        restore(drill.settings, backup_dir, replace=True)
    with pytest.raises(BackupError, match="not a finished"):
        read_manifest(tmp_path)
    r = run_cli(drill.env, "restore", "-i", str(backup_dir), "--yes")
    assert r.returncode == 1 and "checksum" in r.stderr


def test_s3_backups_leave_objects_to_bucket_versioning(drill: Any, tmp_path: Path) -> None:
    from core.backup import backup, restore

    s3 = drill.settings.model_copy(update={"storage": "s3", "s3_bucket": "media"})
    manifest = backup(s3, tmp_path / "s3")
    assert manifest["objects"] == {
        "backend": "s3",
        "copied": False,
        "bucket": "media",
        "note": manifest["objects"]["note"],
    }
    assert "versioned" in manifest["objects"]["note"]
    assert not (tmp_path / "s3" / "objects.tar").exists()
    local = backup(drill.settings, tmp_path / "local")
    assert local["objects"]["copied"]
    with pytest.raises(BackupError, match="not 'local'"):
        restore(s3, tmp_path / "local", replace=True)


def test_pg_tools_match_the_server(soundhive_services: Any) -> None:
    server = int(sql(soundhive_services, "SHOW server_version_num")[0][0]) // 10000
    tools = find_pg_tools(server)
    assert tools.major >= server
    with pytest.raises(BackupError, match="SOUNDHIVE_PG_BIN_DIR"):
        find_pg_tools(99)
