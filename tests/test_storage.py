"""Object storage against real HTTP: the local backend through the API's own signed routes,
the S3 backend through moto's S3 server. Nothing of ours is mocked.

moto enforces no presigned signature, expiry or size, so those are tested on ``local`` only.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from http.client import HTTPConnection
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from fastapi import APIRouter

from core import metrics
from core.app import create_app
from core.embedded import free_port
from core.errors import BadRequest, PayloadTooLarge
from core.kernel import Kernel
from core.settings import Settings
from core.storage import (
    InvalidObjectKey,
    ObjectNotFound,
    Storage,
    StorageUnavailable,
    build_storage,
)
from core.storage.local import LocalStorage
from core.storage.memo import PresignMemo, rounded_expiry
from core.storage.s3 import S3Storage
from core.storage.signing import Grant
from core.testing.live import LiveServer
from tests.test_kernel_plugins import plugin

DATA = bytes(range(256)) * 40  # 10 240 bytes, every byte value, easy to slice
BUCKET = "soundhive-contract"


# -- fixtures ----------------------------------------------------------------------------------
def s3_settings(make_settings: Callable[..., Settings], endpoint: str, **kw: Any) -> Settings:
    values: dict[str, Any] = dict(
        storage="s3", s3_endpoint_url=endpoint, s3_bucket=BUCKET, s3_region="us-east-1"
    )
    return make_settings(**{"skills_enabled": [], **values, **kw})


@pytest.fixture(scope="module")
async def s3_storage(
    make_settings: Callable[..., Settings], moto_url: str
) -> AsyncIterator[S3Storage]:
    storage = build_storage(s3_settings(make_settings, moto_url))
    assert isinstance(storage, S3Storage)
    await storage.ensure_ready()  # creates the bucket: not prod
    yield storage
    await storage.aclose()


@pytest.fixture(scope="module")
def local_server(
    make_settings: Callable[..., Settings], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The API (no skills) with local storage, its public URL known before it is built."""
    port = free_port()
    settings = make_settings(
        storage="local",
        data_dir=tmp_path_factory.mktemp("storage") / "data",
        skills_enabled=[],
        public_url=f"http://127.0.0.1:{port}",
    )
    with LiveServer(create_app(settings), port=port) as server:
        yield server


@pytest.fixture
def local(local_server: LiveServer) -> LocalStorage:
    storage = local_server.kernel.storage
    assert isinstance(storage, LocalStorage)
    return storage


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest) -> Storage:
    """Each contract test runs on both backends."""
    if request.param == "local":
        return request.getfixturevalue("local")  # type: ignore[no-any-return]
    return request.getfixturevalue("s3_storage")  # type: ignore[no-any-return]


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def new_key(kind: str = "uploads") -> str:
    return f"{kind}/user-{uuid.uuid4().hex[:8]}/{uuid.uuid4()}"


async def upload(
    storage: Storage, http: httpx.AsyncClient, key: str, data: bytes = DATA
) -> httpx.Response:
    signed = await storage.presign_put(key, content_type="audio/mpeg", content_length=len(data))
    return await http.request(signed.method, signed.url, content=data, headers=signed.headers)


def failures(operation: str) -> float:
    return float(metrics.STORAGE_FAILURES.labels(operation)._value.get())


# -- the contract, on both backends ------------------------------------------------------------
async def test_presigned_round_trip(storage: Storage, http: httpx.AsyncClient) -> None:
    key = new_key()
    signed = await storage.presign_put(key, content_type="audio/mpeg", content_length=len(DATA))
    assert signed.method == "PUT" and signed.expires_in == 900
    assert signed.headers["Content-Type"] == "audio/mpeg"
    put = await http.put(signed.url, content=DATA, headers=signed.headers)
    assert put.status_code in (200, 201), put.text

    info = await storage.head(key)
    assert info is not None
    assert (info.key, info.size, info.content_type) == (key, len(DATA), "audio/mpeg")
    assert info.etag == hashlib.md5(DATA).hexdigest()
    assert info.last_modified is not None and info.last_modified.tzinfo is not None

    assert await storage.read_range(key, 10, 19) == DATA[10:20]
    assert await storage.read_range(key, len(DATA) - 4, len(DATA) + 100) == DATA[-4:]
    assert await storage.read_range(key, len(DATA) + 10, len(DATA) + 20) == b""

    url = await storage.presign_get(key)
    full = await http.get(url)
    assert full.status_code == 200 and full.content == DATA
    assert full.headers["content-type"] == "audio/mpeg"
    part = await http.get(url, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == DATA[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(DATA)}"
    if storage.backend == "local":  # S3 URLs are signed per method: HEAD needs its own
        head = await http.head(url)
        assert head.status_code == 200 and head.headers["content-length"] == str(len(DATA))
    etag = full.headers["etag"]
    assert (await http.get(url, headers={"If-None-Match": etag})).status_code == 304

    listed = [item async for item in storage.iter_objects(key.rpartition("/")[0] + "/")]
    assert [(item.key, item.size) for item in listed] == [(key, len(DATA))]

    await storage.delete(key)
    assert await storage.head(key) is None
    await storage.delete(key)  # idempotent
    assert [item async for item in storage.iter_objects(key)] == []


async def test_upload_urls_are_write_once(storage: Storage, http: httpx.AsyncClient) -> None:
    key = new_key()
    signed = await storage.presign_put(key, content_type="audio/mpeg", content_length=len(DATA))
    assert (await http.put(signed.url, content=DATA, headers=signed.headers)).is_success
    other = bytes(reversed(DATA))
    again = await http.put(signed.url, content=other, headers=signed.headers)
    assert again.status_code in (409, 412)  # local: OBJECT_EXISTS; S3: PreconditionFailed
    assert await storage.read_range(key, 0, 9) == DATA[:10]
    await storage.delete(key)


async def test_server_side_writes_and_downloads(
    storage: Storage, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    key = f"tracks/{uuid.uuid4()}/cover.jpg"
    cover = b"\xff\xd8\xff-jpeg-ish"
    info = await storage.put_bytes(key, cover, "image/jpeg")
    assert info.size == len(cover) and info.content_type == "image/jpeg"
    assert info.etag == hashlib.md5(cover).hexdigest()
    replaced = await storage.put_bytes(key, b"second", "image/png")  # server writes replace
    assert (await storage.head(key)) is not None
    assert (await storage.head(key)).content_type == "image/png"  # type: ignore[union-attr]
    assert replaced.size == 6

    audio = new_key()
    assert (await upload(storage, http, audio)).is_success
    target = tmp_path / "work" / "original.mp3"
    target.parent.mkdir()
    assert await storage.download_to(audio, target) == len(DATA)
    assert target.read_bytes() == DATA
    assert [p.name for p in target.parent.iterdir()] == ["original.mp3"]  # no temp files

    url = await storage.presign_get(audio, download_name='My "Song"/ß.mp3')
    response = await http.get(url)
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;") and "filename*=UTF-8''My%20Song%C3%9F.mp3" in (
        disposition
    )
    for done in (key, audio):
        await storage.delete(done)


async def test_missing_objects_are_not_outages(storage: Storage, tmp_path: Path) -> None:
    key = new_key()
    assert await storage.head(key) is None
    with pytest.raises(ObjectNotFound):
        await storage.read_range(key, 0, 10)
    with pytest.raises(ObjectNotFound):
        await storage.download_to(key, tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()
    await storage.delete(key)


async def test_listing_by_prefix(storage: Storage) -> None:
    run = f"orphans-{uuid.uuid4().hex[:8]}"
    keys = [f"{run}/a/1", f"{run}/a/2", f"{run}/ab/3", f"{run}/b/deep/4", f"{run}/top"]
    for key in keys:
        await storage.put_bytes(key, key.encode(), "application/octet-stream")

    async def listed(prefix: str) -> list[str]:
        return sorted([item.key async for item in storage.iter_objects(prefix)])

    assert await listed(f"{run}/") == sorted(keys)
    assert await listed(f"{run}/a/") == [f"{run}/a/1", f"{run}/a/2"]
    assert await listed(f"{run}/a") == [f"{run}/a/1", f"{run}/a/2", f"{run}/ab/3"]
    assert await listed(f"{run}/b/deep/4") == [f"{run}/b/deep/4"]
    assert await listed(f"{run}/nothing/") == []
    sizes = {item.key: item.size async for item in storage.iter_objects(f"{run}/")}
    assert sizes[f"{run}/top"] == len(f"{run}/top")
    for key in keys:
        await storage.delete(key)
    assert await listed(f"{run}/") == []


BAD_KEYS = [
    "",
    "../evil",
    "a/../../evil",
    "/etc/passwd",
    "a//b",
    "a/",
    "./a",
    ".meta/x",
    "a\\..\\b",
    "a\x00b",
    "%2e%2e/evil",
    "a b",
    "ä",
    "x" * 201,
    "a/" * 300 + "a",
]


async def test_invalid_keys_are_refused_before_any_io(storage: Storage) -> None:
    for bad in BAD_KEYS:
        with pytest.raises(InvalidObjectKey):
            await storage.presign_put(bad, content_type="audio/mpeg", content_length=1)
        with pytest.raises(InvalidObjectKey):
            await storage.head(bad)
        with pytest.raises(InvalidObjectKey):
            await storage.put_bytes(bad, b"x", "image/png")
        with pytest.raises(InvalidObjectKey):
            await storage.delete(bad)
        with pytest.raises(InvalidObjectKey):
            await storage.presign_get(bad)
    with pytest.raises(InvalidObjectKey):
        [item async for item in storage.iter_objects("../")]
    with pytest.raises(PayloadTooLarge):
        await storage.presign_put("uploads/x", content_type="audio/mpeg", content_length=10**12)
    with pytest.raises(BadRequest):
        await storage.presign_put("uploads/x", content_type="audio/mpeg\r\nX: y", content_length=1)
    with pytest.raises(ValueError):
        await storage.presign_get("uploads/x", expires_in=0)


# -- local: signed URLs --------------------------------------------------------------------------
def with_query(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    return parts._replace(query=urlencode(query)).geturl()


def problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


async def test_get_urls_are_reused_within_their_bucket_and_last_as_asked(
    storage: Storage, http: httpx.AsyncClient
) -> None:
    """Signing costs more than a cached read, so one URL serves a whole expiry bucket; it
    still lasts at least as long as asked, and differs per object and download name."""
    key = new_key()
    await storage.put_bytes(key, DATA, "audio/mpeg")
    asked = time.time()
    first = await storage.presign_get(key, expires_in=300)
    assert await storage.presign_get(key, expires_in=300) == first
    assert (await http.get(first)).content == DATA
    assert await storage.presign_get(key, expires_in=600) != first
    assert await storage.presign_get(key, expires_in=300, download_name="a.mp3") != first
    assert await storage.presign_get(new_key(), expires_in=300) != first
    query = dict(parse_qsl(urlsplit(first).query))
    if "X-Amz-Expires" in query:  # S3: relative to the signing time
        lifetime = int(query["X-Amz-Expires"])
    else:
        lifetime = int(query["expires"]) - int(asked)
    assert 300 <= lifetime <= 330  # a 30 s bucket: at least as asked, at most one bucket more
    await storage.delete(key)


def test_rounded_expiry_buckets() -> None:
    assert rounded_expiry(900, now=1_000) == 1_920  # 60 s buckets (the cap)
    assert rounded_expiry(900, now=1_020.9) == 1_920
    assert rounded_expiry(900, now=1_021) == 1_980
    assert rounded_expiry(120, now=1_000) == 1_128  # 12 s buckets
    assert rounded_expiry(5, now=1_000) == 1_005  # 1 s buckets: exact


def test_presign_memo_stays_bounded() -> None:
    memo = PresignMemo(max_entries=3)
    now = int(time.time())
    memo.put(("gone", now - 1), "u0", now - 1)
    memo.put(("a", now + 60), "u1", now + 60)
    memo.put(("b", now + 60), "u2", now + 60)
    memo.put(("c", now + 60), "u3", now + 60)  # full: the expired entry makes room
    assert memo.get(("gone", now - 1)) is None
    assert [memo.get((k, now + 60)) for k in "abc"] == ["u1", "u2", "u3"]
    memo.put(("d", now + 60), "u4", now + 60)  # full of live entries: start over
    assert memo.get(("a", now + 60)) is None and memo.get(("d", now + 60)) == "u4"


async def test_local_expired_urls_are_refused(local: LocalStorage, http: httpx.AsyncClient) -> None:
    key = new_key()
    past = int(time.time()) - 5
    put = local.signed_url(Grant("PUT", key, past, "audio/mpeg", len(DATA)))
    response = await http.put(put, content=DATA, headers={"Content-Type": "audio/mpeg"})
    problem(response, 403, "SIGNATURE_EXPIRED")
    assert await local.head(key) is None

    await local.put_bytes(key, DATA, "audio/mpeg")
    problem(await http.get(local.signed_url(Grant("GET", key, past))), 403, "SIGNATURE_EXPIRED")
    await local.delete(key)


async def test_local_tampered_urls_are_refused(
    local: LocalStorage, http: httpx.AsyncClient
) -> None:
    key = new_key()
    signed = await local.presign_put(key, content_type="audio/mpeg", content_length=len(DATA))
    headers = signed.headers
    forged = [
        with_query(signed.url, sig="A" * 43),
        with_query(signed.url, sig=None),
        with_query(signed.url, expires=str(int(time.time()) + 86400)),
        with_query(signed.url, expires="soon"),
        with_query(signed.url, len=str(len(DATA) + 1)),
        with_query(signed.url, ct="audio/wav"),
        signed.url.replace(key, key + "x"),
    ]
    for url in forged:
        ct = dict(parse_qsl(urlsplit(url).query)).get("ct", "audio/mpeg")
        response = await http.put(url, content=DATA, headers={**headers, "Content-Type": ct})
        problem(response, 403, "INVALID_SIGNATURE")
    # a download URL cannot upload, an upload URL cannot download
    get_url = await local.presign_get(key)
    problem(await http.put(get_url, content=DATA, headers=headers), 403, "INVALID_SIGNATURE")
    problem(await http.get(signed.url), 403, "INVALID_SIGNATURE")
    problem(await http.get(with_query(get_url, dl="evil.html")), 403, "INVALID_SIGNATURE")
    assert await local.head(key) is None
    assert (await http.put(signed.url, content=DATA, headers=headers)).status_code == 201
    await local.delete(key)


def leftovers(local: LocalStorage) -> list[Path]:
    return list((local.root / ".tmp").iterdir())


async def test_local_upload_size_is_exact(local: LocalStorage, http: httpx.AsyncClient) -> None:
    key = new_key()
    signed = await local.presign_put(key, content_type="audio/mpeg", content_length=100)

    async def stream(total: int) -> AsyncIterator[bytes]:
        for _ in range(total // 10):
            yield b"0123456789"

    too_big = await http.put(signed.url, content=b"x" * 150, headers=signed.headers)
    problem(too_big, 413, "PAYLOAD_TOO_LARGE")
    chunked_big = await http.put(signed.url, content=stream(1000), headers=signed.headers)
    problem(chunked_big, 413, "PAYLOAD_TOO_LARGE")
    too_small = await http.put(signed.url, content=b"x" * 99, headers=signed.headers)
    problem(too_small, 400, "FILE_UPLOAD_FAILED")
    chunked_small = await http.put(signed.url, content=stream(50), headers=signed.headers)
    problem(chunked_small, 400, "FILE_UPLOAD_FAILED")
    assert await local.head(key) is None and leftovers(local) == []
    assert not (local.root / ".meta" / f"{key}.json").exists()

    exact = await http.put(signed.url, content=stream(100), headers=signed.headers)
    assert exact.status_code == 201 and exact.headers["etag"].strip('"') == (
        hashlib.md5(b"0123456789" * 10).hexdigest()
    )
    await local.delete(key)


async def test_local_upload_content_type_must_match(
    local: LocalStorage, http: httpx.AsyncClient
) -> None:
    key = new_key()
    signed = await local.presign_put(key, content_type="audio/mpeg", content_length=len(DATA))
    for sent in ({"Content-Type": "text/html"}, {}):
        problem(
            await http.put(signed.url, content=DATA, headers=sent), 415, "UNSUPPORTED_MEDIA_TYPE"
        )
    assert await local.head(key) is None
    ok = await http.put(signed.url, content=DATA, headers={"Content-Type": "Audio/MPEG"})
    assert ok.status_code == 201
    await local.delete(key)


def raw_request(server: LiveServer, method: str, target: str, body: bytes = b"") -> int:
    """Send the request target byte for byte (httpx would normalise ``..`` away)."""
    connection = HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        headers = {"Content-Type": "audio/mpeg", "Content-Length": str(len(body))}
        connection.request(method, target, body=body, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


TRAVERSALS = [
    "../evil",
    "%2e%2e/evil",
    "%2E%2E%2Fevil",
    "..%2fevil",
    "a/../../evil",
    "a/%2e%2e/%2e%2e/evil",
    "/tmp/evil",
    "%2Ftmp%2Fevil",
    "..\\evil",
    "a%5c..%5c..%5cevil",
    "evil%00.mp3",
    ".meta/evil",
    ".tmp/evil",
]


def test_local_path_traversal_is_impossible(local: LocalStorage, local_server: LiveServer) -> None:
    base = local.root.parent.parent  # the test's temporary folder, above the data dir
    body = b"pwned"
    soon = int(time.time()) + 60
    for raw in TRAVERSALS:
        # even a correctly signed URL for a hostile key must be refused
        put = urlencode(local.signer.query(Grant("PUT", raw, soon, "audio/mpeg", len(body))))
        get = urlencode(local.signer.query(Grant("GET", raw, soon)))
        # 400 INVALID_OBJECT_KEY, before the signature or the disk is looked at
        assert raw_request(local_server, "PUT", f"/storage/{raw}?{put}", body) == 400, raw
        assert raw_request(local_server, "GET", f"/storage/{raw}?{get}") == 400, raw
    written = [p for p in base.rglob("*") if "evil" in p.name or "pwned" in p.name]
    assert written == [] and not Path("/tmp/evil").exists()
    assert (local.root.parent / "secret.key").exists()
    query = urlencode(local.signer.query(Grant("GET", "../secret.key", soon)))
    assert raw_request(local_server, "GET", f"/storage/../secret.key?{query}") == 400


# -- local: serving ------------------------------------------------------------------------------
async def test_local_ranges_follow_rfc_9110(local: LocalStorage, http: httpx.AsyncClient) -> None:
    key = new_key()
    await local.put_bytes(key, DATA, "audio/mpeg")
    url = await local.presign_get(key)
    size = len(DATA)

    async def fetch(range_: str, **extra: str) -> httpx.Response:
        return await http.get(url, headers={"Range": range_, **extra})

    r = await fetch("bytes=-5")
    assert r.status_code == 206 and r.content == DATA[-5:]
    assert r.headers["content-range"] == f"bytes {size - 5}-{size - 1}/{size}"
    r = await fetch(f"bytes={size - 3}-")
    assert r.status_code == 206 and r.content == DATA[-3:]
    r = await fetch("bytes=100-999999")
    assert r.status_code == 206 and r.content == DATA[100:]
    r = await fetch(f"bytes=-{size * 2}")
    assert r.status_code == 206 and r.content == DATA
    for ignored in ("bytes=0-1,5-6", "bytes=abc", "items=0-1", "bytes=9-3", "bytes=-"):
        r = await fetch(ignored)
        assert r.status_code == 200 and r.content == DATA, ignored
    for unsatisfiable in (f"bytes={size}-", "bytes=-0", f"bytes={size + 10}-{size + 20}"):
        r = await fetch(unsatisfiable)
        problem(r, 416, "RANGE_NOT_SATISFIABLE")
        assert r.headers["content-range"] == f"bytes */{size}"
    etag = (await http.head(url)).headers["etag"]
    assert (await fetch("bytes=0-3", **{"If-Range": etag})).status_code == 206
    assert (await fetch("bytes=0-3", **{"If-Range": '"stale"'})).status_code == 200
    head = await http.head(url, headers={"Range": "bytes=0-3"})
    assert head.status_code == 206 and head.headers["content-length"] == "4" and not head.content
    assert (await http.get(url, headers={"If-None-Match": f'W/{etag}, "x"'})).status_code == 304
    assert (await http.get(url, headers={"If-None-Match": '"other"'})).status_code == 200
    await local.delete(key)


async def test_local_serves_user_content_safely(
    local: LocalStorage, http: httpx.AsyncClient
) -> None:
    key = new_key()
    await local.put_bytes(key, b"<script>alert(1)</script>", "text/html")
    response = await http.get(await local.presign_get(key))
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers["content-security-policy"]
    problem(await http.get(await local.presign_get(new_key())), 404, "OBJECT_NOT_FOUND")
    await local.delete(key)
    assert not (local.root / key).parent.exists()  # empty folders are pruned
    assert not (local.root / ".meta" / key).parent.exists()


async def test_local_urls_use_the_public_url(
    local: LocalStorage, local_server: LiveServer, http: httpx.AsyncClient
) -> None:
    url = await local.presign_get("tracks/x/cover.jpg", expires_in=60)
    assert url.startswith(f"{local_server.url}/storage/tracks/x/cover.jpg?expires=")
    openapi = (await http.get(local_server.url + "/openapi.json")).json()
    operations = openapi["paths"]["/storage/{key}"]
    assert {"put", "get", "head"} <= set(operations)
    assert operations["get"]["tags"] == ["storage"]


def test_query_strings_never_reach_the_logs(
    make_settings: Callable[..., Settings], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(data_dir=tmp_path, skills_enabled=[], log_level="INFO")
    with LiveServer(create_app(settings)) as server:
        local = server.kernel.storage
        assert isinstance(local, LocalStorage)
        asyncio.run(local.put_bytes("a/b", DATA, "audio/mpeg"))
        url = asyncio.run(local.presign_get("a/b"))
        assert url.startswith("/storage/a/b?")  # no public_url: relative to the API
        assert httpx.get(server.url + url).is_success
        httpx.get(server.url + "/storage/a/b?expires=1&sig=leakme")
    sig = dict(parse_qsl(urlsplit(url).query))["sig"]
    logged = capsys.readouterr().err
    assert "/storage/a/b" in logged and sig not in logged and "leakme" not in logged


# -- outages -------------------------------------------------------------------------------------
def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there any more


async def test_s3_outage_is_storage_unavailable(
    make_settings: Callable[..., Settings],
    aws_env: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    storage = build_storage(s3_settings(make_settings, closed_port_url()))
    before = failures("head")
    try:
        with pytest.raises(StorageUnavailable) as caught:
            await storage.head("uploads/x")
        assert caught.value.status == 503 and caught.value.instance_code == "SERVICE_UNAVAILABLE"
        assert failures("head") == before + 1
        calls = [
            storage.read_range("uploads/x", 0, 1),
            storage.put_bytes("uploads/x", b"x", "image/png"),
            storage.delete("uploads/x"),
            storage.check(),
            storage.ensure_ready(),
            storage.download_to("uploads/x", tmp_path / "never"),
        ]
        for call in calls:
            with pytest.raises(StorageUnavailable):
                await call
        with pytest.raises(StorageUnavailable):
            [item async for item in storage.iter_objects("uploads/")]
        # signing is local work: URLs can still be issued while the store is down
        assert (await storage.presign_get("uploads/x")).startswith("http://127.0.0.1:")
    finally:
        await storage.aclose()


def storage_probe_router(kernel: Kernel) -> APIRouter:
    router = APIRouter()

    @router.get("/probe")
    async def probe() -> dict[str, bool]:
        return {"exists": await kernel.storage.head("uploads/x") is not None}

    return router


def test_s3_outage_through_http(
    make_settings: Callable[..., Settings],
    aws_env: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    probe = plugin("probe", register_routers=lambda kernel: [storage_probe_router(kernel)])
    settings = s3_settings(make_settings, closed_port_url(), skills_enabled=["probe"])
    with LiveServer(create_app(settings, extra_plugins=[probe])) as server:
        response = httpx.get(server.url + "/api/v1/probe", timeout=30)
        problem(response, 503, "SERVICE_UNAVAILABLE")
        assert response.headers["retry-after"] == "5"
        ready = httpx.get(server.url + "/readyz", timeout=30)
        # S3 is shared by every replica: its outage is reported but not critical
        assert ready.status_code == 200
        assert ready.json()["checks"]["storage"] == {
            "ok": False,
            "critical": False,
            "error": "StorageUnavailable",
        }


def test_local_urls_default_to_the_served_address(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """Without SOUNDHIVE_PUBLIC_URL, URLs made during a request use the address it reached."""

    def url_router(kernel: Kernel) -> APIRouter:
        router = APIRouter()

        @router.get("/url")
        async def url() -> dict[str, str]:
            return {"url": await kernel.storage.presign_get("a/b")}

        return router

    probe = plugin("probe", register_routers=lambda kernel: [url_router(kernel)])
    settings = make_settings(data_dir=tmp_path, skills_enabled=["probe"], storage="local")
    with LiveServer(create_app(settings, extra_plugins=[probe])) as server:
        local = server.kernel.storage
        assert isinstance(local, LocalStorage)
        asyncio.run(local.put_bytes("a/b", DATA, "audio/mpeg"))
        url = httpx.get(server.url + "/api/v1/url").json()["url"]
        assert url.startswith(server.url + "/storage/a/b?")
        assert httpx.get(url).content == DATA


def test_local_disk_failure_through_http(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    (tmp_path / "objects").write_text("not a folder")  # every write under it fails
    settings = make_settings(data_dir=tmp_path, skills_enabled=[], storage="local")
    with LiveServer(create_app(settings)) as server:
        local = server.kernel.storage
        assert isinstance(local, LocalStorage)
        signed = asyncio.run(local.presign_put("a/b", content_type="audio/mpeg", content_length=3))
        url = server.url + signed.url  # no public_url: the URL is relative to the API
        before = failures("head")
        response = httpx.put(url, content=b"abc", headers=signed.headers)
        problem(response, 503, "SERVICE_UNAVAILABLE")
        # the write-once check fails first: an outage, not "no such object yet"
        assert failures("head") == before + 1
        ready = httpx.get(server.url + "/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["storage"]["ok"] is False
        assert ready.json()["checks"]["storage"]["critical"] is True


# -- S3 specifics, kernel wiring and settings ---------------------------------------------------
async def test_s3_presigned_put_binds_type_length_and_write_once(s3_storage: S3Storage) -> None:
    signed = await s3_storage.presign_put(
        "uploads/u/k", content_type="audio/flac", content_length=42, expires_in=60
    )
    query = dict(parse_qsl(urlsplit(signed.url).query))
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256" and query["X-Amz-Expires"] == "60"
    assert set(query["X-Amz-SignedHeaders"].split(";")) >= {
        "content-type",
        "content-length",
        "if-none-match",
        "host",
    }
    assert urlsplit(signed.url).path == f"/{BUCKET}/uploads/u/k"  # path-style for endpoints
    assert signed.headers == {"Content-Type": "audio/flac", "If-None-Match": "*"}
    url = await s3_storage.presign_get("uploads/u/k", expires_in=120)
    # the expiry is rounded up to a 12 s bucket (core/storage/memo.py): valid 120-132 s
    assert 120 <= int(dict(parse_qsl(urlsplit(url).query))["X-Amz-Expires"]) <= 132


async def test_s3_bucket_is_created_outside_prod_only(
    make_settings: Callable[..., Settings], moto_url: str
) -> None:
    name = f"soundhive-{uuid.uuid4().hex[:12]}"
    prod = build_storage(
        s3_settings(make_settings, moto_url, s3_bucket=name, env="prod", secret_key="k" * 40)
    )
    try:
        with pytest.raises(StorageUnavailable):
            await prod.ensure_ready()  # prod never creates buckets
        with pytest.raises(StorageUnavailable):
            await prod.check()
    finally:
        await prod.aclose()
    dev = build_storage(s3_settings(make_settings, moto_url, s3_bucket=name))
    try:
        await dev.ensure_ready()
        await dev.ensure_ready()  # idempotent
        await dev.check()
    finally:
        await dev.aclose()


async def test_s3_client_works_from_two_event_loops(s3_storage: S3Storage) -> None:
    """The API's loop and a Dramatiq worker's loop may share one kernel's storage; closing it
    from one loop closes the other loop's client on that loop."""
    key = new_key()
    await s3_storage.put_bytes(key, b"from the test loop", "audio/mpeg")
    seen: list[Any] = []

    def other_loop() -> None:
        async def work() -> None:
            info = await s3_storage.head(key)
            seen.append(info.size if info else None)
            await s3_storage.put_bytes(key + "-2", b"other", "audio/mpeg")
            seen.append(len(s3_storage._clients))
            await s3_storage.aclose()

        asyncio.run(work())

    thread = threading.Thread(target=other_loop)
    thread.start()
    await asyncio.to_thread(thread.join, 30)
    assert seen == [len(b"from the test loop"), 2] and s3_storage._clients == {}
    assert (await s3_storage.read_range(key + "-2", 0, 99)) == b"other"  # a fresh client
    assert await s3_storage.read_range(key, 5, 4) == b""
    for done in (key, key + "-2"):
        await s3_storage.delete(done)


async def test_kernel_builds_storage_lazily_and_closes_it(
    make_settings: Callable[..., Settings], moto_url: str, tmp_path: Path
) -> None:
    kernel = Kernel(make_settings(data_dir=tmp_path, skills_enabled=[]))
    assert kernel._storage is None
    assert isinstance(kernel.storage, LocalStorage) and kernel.storage is kernel.storage
    assert not (tmp_path / "objects").exists()  # nothing touched the disk yet
    assert not (tmp_path / "secret.key").exists()
    await kernel.aclose()
    assert kernel._storage is None

    kernel = Kernel(s3_settings(make_settings, moto_url))
    assert isinstance(kernel.storage, S3Storage)
    assert await kernel.storage.head("uploads/none") is None
    await kernel.aclose()
    assert kernel._storage is None


def test_settings_for_storage(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    assert settings.storage == "local" and settings.max_upload_bytes == 100 * 1024 * 1024
    assert settings.presign_get_expires == settings.presign_put_expires == 900
    with pytest.raises(ValueError, match="SOUNDHIVE_S3_BUCKET is required"):
        make_settings(env="prod", secret_key="k" * 40, storage="s3", s3_bucket=None)
    with pytest.raises(ValueError):
        make_settings(presign_get_expires=0)
