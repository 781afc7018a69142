"""auth-jwt-verify over real HTTP: a live app, the test Auth Server (JWKS) and real Redis.

Every rejection must be a 401 problem with code UNAUTHORIZED; key rotation, the refetch
cooldown, Auth Server and Redis outages are observed through the JWKS server's request count.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import httpx
import pytest
import redis
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from fastapi import APIRouter
from joserfc import jwk

from core.app import create_app
from core.auth import CurrentPrincipal
from core.embedded import free_port
from core.kernel import Kernel
from core.skill import Skill, hookimpl
from core.testing.jwks import JwksServer
from core.testing.live import LiveServer

PROBLEM = "application/problem+json"
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth"}


class WhoAmI:
    """A test-only skill: ``GET /api/v1/whoami`` echoes the principal."""

    SKILL = Skill(name="whoami-test", version="0", requires=("auth-jwt-verify",))

    @hookimpl
    def register_routers(self, kernel: Kernel) -> list[APIRouter]:
        router = APIRouter()

        @router.get("/whoami")
        async def whoami(principal: CurrentPrincipal) -> dict[str, Any]:
            roles = sorted(principal.roles)
            return {"sub": principal.sub, "roles": roles, "email": principal.email}

        return [router]


# -- token forging ------------------------------------------------------------------------
def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    """A compact JWS with any header at all, signed by ``sign`` (joserfc would refuse some)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


def rs256(key: jwk.RSAKey, digest: hashes.HashAlgorithm | None = None) -> Callable[[bytes], bytes]:
    private = key.private_key
    assert private is not None
    return lambda data: private.sign(data, padding.PKCS1v15(), digest or hashes.SHA256())


def claims_of(jwks: JwksServer, *, drop: tuple[str, ...] = (), **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": jwks.issuer,
        "aud": jwks.audience,
        "sub": "mallory",
        "iat": now,
        "exp": now + 600,
        "roles": ["admin"],
    }
    claims.update(overrides)
    for name in drop:
        claims.pop(name)
    return claims


def signed(jwks: JwksServer, header: dict[str, Any] | None = None, **claims: Any) -> str:
    """A token signed by the Auth Server's current key, with a hand-made header/claims."""
    head = {"alg": "RS256", "typ": "JWT", "kid": jwks.key.kid, **(header or {})}
    drop = tuple(name for name, value in claims.items() if value is ...)
    kept = {name: value for name, value in claims.items() if value is not ...}
    return forge(head, claims_of(jwks, drop=drop, **kept), rs256(jwks.key))


def public_pem(jwks: JwksServer) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return jwks.key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_unauthorized(response: httpx.Response, detail: str = "") -> dict[str, Any]:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["code"] == "UNAUTHORIZED" and body["status"] == 401
    assert body["type"] == "urn:soundhive:problem:unauthorized"
    assert detail.lower() in body["detail"].lower(), body["detail"]
    return body


# -- fixtures -------------------------------------------------------------------------------
Serve = Callable[..., AbstractContextManager[LiveServer]]


@pytest.fixture(scope="module")
def serve(make_settings: Callable[..., Any]) -> Iterator[Serve]:
    """Start a live app (auth-jwt-verify + whoami) with settings overrides; fresh kernel each."""

    @contextmanager
    def start(**overrides: Any) -> Iterator[LiveServer]:
        settings = make_settings(skills_enabled=["auth-jwt-verify", "whoami-test"], **overrides)
        with LiveServer(create_app(settings, extra_plugins=[WhoAmI()])) as server:
            yield server

    yield start


@pytest.fixture(scope="module")
def app(serve: Serve, jwks_server: JwksServer) -> Iterator[httpx.Client]:
    """One warm app shared by the tests that only send tokens."""
    with serve() as server, httpx.Client(base_url=server.url + "/api/v1", timeout=10) as client:
        yield client


@pytest.fixture
def jwks_redis(soundhive_services: Any) -> Iterator[redis.Redis]:
    """The test Redis with no JWKS copy in it, before and after the test."""
    client = redis.Redis.from_url(soundhive_services.redis_url)

    def wipe() -> None:
        keys = list(client.scan_iter(match="sh:jwks:*"))
        if keys:
            client.delete(*keys)

    wipe()
    yield client
    wipe()
    client.close()


@pytest.fixture
def auth_server(jwks_server: JwksServer, jwks_redis: redis.Redis) -> Iterator[JwksServer]:
    """The shared JWKS server, restored (keys, availability) after the test changes it."""
    keys = list(jwks_server.keys)
    try:
        yield jwks_server
    finally:
        jwks_server.keys = keys
        jwks_server.available = True


@contextmanager
def client_of(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + "/api/v1", timeout=10) as client:
        yield client


class Requests:
    """Counts the JWKS requests made since it was created."""

    def __init__(self, jwks: JwksServer) -> None:
        self.jwks, self.start = jwks, jwks.requests

    @property
    def made(self) -> int:
        return self.jwks.requests - self.start


# -- the happy path ---------------------------------------------------------------------------
def test_valid_token_gives_the_principal(app: httpx.Client, jwks_server: JwksServer) -> None:
    token = jwks_server.mint("alice", roles=["moderator", "admin"], email="alice@example.com")
    r = app.get("/whoami", headers=bearer(token))
    assert r.status_code == 200, r.text
    assert r.json() == {
        "sub": "alice",
        "roles": ["admin", "moderator"],
        "email": "alice@example.com",
    }


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"roles": "admin  moderator"}, {"sub": "mallory", "roles": ["admin", "moderator"]}),
        ({"roles": ..., "email": 42}, {"sub": "mallory", "roles": [], "email": None}),
        ({"aud": ["other-api", "soundhive"]}, {"sub": "mallory", "roles": ["admin"]}),
        ({"nbf": "now+10"}, {"sub": "mallory"}),  # clock skew within the leeway
        ({"exp": "now-5"}, {"sub": "mallory"}),
    ],
    ids=[
        "roles-as-space-separated-string",
        "no-roles-bad-email",
        "aud-list",
        "nbf-skew",
        "exp-skew",
    ],
)
def test_tolerated_claim_shapes(
    app: httpx.Client, jwks_server: JwksServer, claims: dict[str, Any], expected: dict[str, Any]
) -> None:
    # times are relative to when the test runs, not to when the module was collected
    resolved = {
        name: int(time.time()) + int(value[3:])
        if isinstance(value, str) and value.startswith("now")
        else value
        for name, value in claims.items()
    }
    r = app.get("/whoami", headers=bearer(signed(jwks_server, **resolved)))
    assert r.status_code == 200, r.text
    assert expected.items() <= r.json().items()


def test_no_token_is_anonymous_and_refused_by_a_protected_route(app: httpx.Client) -> None:
    body = assert_unauthorized(app.get("/whoami"), "authentication required")
    assert body["instance"] == "/api/v1/whoami"


def test_other_schemes_query_strings_and_cookies_are_ignored(
    app: httpx.Client, jwks_server: JwksServer
) -> None:
    token = jwks_server.mint("alice")
    assert app.get("/whoami", headers=bearer(token)).status_code == 200
    requests: list[dict[str, Any]] = [
        {"params": {"access_token": token}},
        {"params": {"token": token}},
        {"headers": {"Cookie": f"access_token={token}; token={token}"}},
        {"headers": {"Authorization": f"Token {token}"}},
        {"headers": {"X-Access-Token": token}},
    ]
    for request in requests:
        assert_unauthorized(app.get("/whoami", **request), "authentication required")


# -- every attack is a 401 ---------------------------------------------------------------------
def _hs256_with_public_key(jwks: JwksServer) -> str:
    secret = public_pem(jwks)
    header = {"alg": "HS256", "typ": "JWT", "kid": jwks.key.kid}
    return forge(header, claims_of(jwks), lambda data: hmac.digest(secret, data, hashlib.sha256))


REJECTED: dict[str, tuple[Callable[[JwksServer], str], str]] = {
    "malformed": (lambda j: "not-a-jwt", "malformed"),
    "malformed-segments": (lambda j: "eyJhbGciOiJSUzI1NiJ9.%%%.abc", "malformed"),
    "malformed-header-json": (lambda j: f"{b64(b'[1]')}.{b64(b'{}')}.c2ln", "malformed"),
    "alg-none": (
        lambda j: forge({"alg": "none", "typ": "JWT"}, claims_of(j), lambda data: b""),
        "algorithm not allowed",
    ),
    "alg-none-with-kid": (
        lambda j: forge({"alg": "none", "kid": j.key.kid}, claims_of(j), lambda data: b""),
        "algorithm not allowed",
    ),
    "hs256-public-key-as-secret": (_hs256_with_public_key, "algorithm not allowed"),
    "rs512-not-configured": (
        lambda j: forge(
            {"alg": "RS512", "kid": j.key.kid}, claims_of(j), rs256(j.key, hashes.SHA512())
        ),
        "algorithm not allowed",
    ),
    "bad-signature-known-kid": (
        lambda j: j.mint("mallory", key=JwksServer.new_key(), header={"kid": j.key.kid}),
        "invalid token signature",
    ),
    "tampered-payload": (
        lambda j: ".".join(
            [(t := j.mint("alice").split("."))[0], b64(json.dumps(claims_of(j)).encode()), t[2]]
        ),
        "invalid token signature",
    ),
    "unknown-kid": (lambda j: j.mint("mallory", key=JwksServer.new_key()), "unknown key"),
    "missing-kid": (
        lambda j: forge({"alg": "RS256", "typ": "JWT"}, claims_of(j), rs256(j.key)),
        "(kid)",
    ),
    "expired": (lambda j: j.mint("mallory", expires_in=-600), "expired"),
    "nbf-in-the-future": (lambda j: j.mint("mallory", nbf=int(time.time()) + 600), "not yet valid"),
    "iat-in-the-future": (lambda j: j.mint("mallory", iat=int(time.time()) + 600), "not yet valid"),
    "missing-exp": (lambda j: signed(j, exp=...), "required claims: exp"),
    "exp-not-a-number": (lambda j: signed(j, exp="tomorrow"), "'exp'"),
    "wrong-iss": (lambda j: j.mint("mallory", iss="https://evil.example"), "'iss'"),
    "missing-iss": (lambda j: signed(j, iss=...), "required claims: iss"),
    "wrong-aud": (lambda j: j.mint("mallory", aud="another-api"), "'aud'"),
    "missing-aud": (lambda j: signed(j, aud=...), "required claims: aud"),
    "missing-sub": (lambda j: signed(j, sub=...), "required claims: sub"),
    "empty-sub": (lambda j: signed(j, sub=""), "'sub'"),
    "roles-not-strings": (lambda j: signed(j, roles=[{"name": "admin"}]), "'roles'"),
    "jku-header": (
        lambda j: j.mint("mallory", header={"jku": "https://evil.example/jwks.json"}),
        "'jku'",
    ),
    "x5u-header": (
        lambda j: j.mint("mallory", header={"x5u": "https://evil.example/cert.pem"}),
        "'x5u'",
    ),
    "embedded-jwk-header": (
        lambda j: signed(j, header={"jwk": j.key.as_dict(private=False)}),
        "'jwk'",
    ),
    "x5c-header": (lambda j: signed(j, header={"x5c": ["MIIBIjANBgkqhkiG9w0BAQEFAAOC"]}), "'x5c'"),
    "crit-header": (lambda j: signed(j, header={"crit": ["exp"], "exp": 1}), "critical"),
    "unencoded-payload-b64": (
        lambda j: signed(j, header={"b64": False, "crit": ["b64"]}),
        "critical",
    ),
    "oversized-garbage": (lambda j: "A" * 9000, "too large"),
    "oversized-valid": (lambda j: j.mint("mallory", padding="x" * 9000), "too large"),
}


@pytest.mark.parametrize("case", list(REJECTED))
def test_rejected_tokens_are_401_problems(
    app: httpx.Client, jwks_server: JwksServer, case: str
) -> None:
    build, detail = REJECTED[case]
    token = build(jwks_server)
    response = app.get("/whoami", headers=bearer(token))
    body = assert_unauthorized(response, detail)
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert token[:40] not in json.dumps(body)  # the token is never echoed back


def test_empty_bearer_is_malformed(app: httpx.Client) -> None:
    assert_unauthorized(app.get("/whoami", headers={"Authorization": "Bearer"}), "malformed")


# -- JWKS: caching, rotation, cooldown, outages --------------------------------------------------
def test_rotation_refetches_once_then_the_cooldown_holds(
    serve: Serve, auth_server: JwksServer, jwks_redis: redis.Redis
) -> None:
    with serve() as server, client_of(server) as api:
        count = Requests(auth_server)
        old = auth_server.mint("alice")
        assert api.get("/whoami", headers=bearer(old)).json()["sub"] == "alice"
        assert count.made == 1
        mine = [  # other apps of the session may have cached their own JWKS in this Redis
            key
            for key in jwks_redis.scan_iter(match="sh:jwks:*")
            if auth_server.key.kid in (jwks_redis.get(key) or b"").decode()
        ]
        (copy,) = mine  # shared with other processes
        assert 3000 < jwks_redis.ttl(copy) <= 3600
        shared = json.loads(jwks_redis.get(copy) or "{}")
        assert [key["kid"] for key in shared["jwks"]["keys"]] == [auth_server.key.kid]
        assert not PRIVATE_MEMBERS & shared["jwks"]["keys"][0].keys()

        new_key = auth_server.rotate()
        r = api.get("/whoami", headers=bearer(auth_server.mint("bob", key=new_key)))
        assert r.status_code == 200 and r.json()["sub"] == "bob"
        assert count.made == 2  # exactly one refetch for the new kid
        assert api.get("/whoami", headers=bearer(old)).status_code == 200  # old key kept

        for _ in range(10):  # forged kids inside the cooldown: no more traffic to the Auth Server
            forged = auth_server.mint("mallory", key=JwksServer.new_key())
            assert_unauthorized(api.get("/whoami", headers=bearer(forged)), "unknown key")
        assert count.made == 2


def test_concurrent_unknown_kids_cause_one_fetch(serve: Serve, auth_server: JwksServer) -> None:
    with serve() as server:
        count = Requests(auth_server)

        def call(token: str) -> int:
            with client_of(server) as api:
                return api.get("/whoami", headers=bearer(token)).status_code

        cold = [auth_server.mint(f"user{i}") for i in range(16)]
        with ThreadPoolExecutor(16) as pool:
            assert list(pool.map(call, cold)) == [200] * 16
        assert count.made == 1  # a cold start under load: one fetch, not sixteen

        new_key = auth_server.rotate()
        rotated = [auth_server.mint(f"user{i}", key=new_key) for i in range(16)]
        with ThreadPoolExecutor(16) as pool:
            assert list(pool.map(call, rotated)) == [200] * 16
        assert count.made == 2


def test_cooldown_is_configurable_and_expires(
    serve: Serve, auth_server: JwksServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOUNDHIVE_AUTH_JWKS_REFETCH_COOLDOWN", "0.4")
    with serve() as server, client_of(server) as api:
        count = Requests(auth_server)
        assert api.get("/whoami", headers=bearer(auth_server.mint("alice"))).status_code == 200

        def forged() -> httpx.Response:
            token = auth_server.mint("mallory", key=JwksServer.new_key())
            return api.get("/whoami", headers=bearer(token))

        assert_unauthorized(forged(), "unknown key")
        assert_unauthorized(forged(), "unknown key")
        assert count.made == 2  # the first unknown kid refetched, the second waited
        time.sleep(0.5)
        assert_unauthorized(forged(), "unknown key")
        assert count.made == 3


def test_auth_server_outage_keeps_known_keys_and_the_redis_copy(
    serve: Serve, auth_server: JwksServer, soundhive_services: Any
) -> None:
    token = auth_server.mint("alice", roles=["admin"])
    with serve() as warm, client_of(warm) as api:
        assert api.get("/whoami", headers=bearer(token)).status_code == 200
        auth_server.available = False
        count = Requests(auth_server)

        forged = auth_server.mint("mallory", key=JwksServer.new_key())
        assert_unauthorized(api.get("/whoami", headers=bearer(forged)), "unknown key")
        assert count.made == 1  # it tried the Auth Server, which failed ...
        r = api.get("/whoami", headers=bearer(token))  # ... and kept the keys it had
        assert r.status_code == 200 and r.json()["roles"] == ["admin"]

        with serve() as cold, client_of(cold) as fresh:  # new kernel: empty in-process cache
            r = fresh.get("/whoami", headers=bearer(token))
            assert r.status_code == 200 and r.json()["sub"] == "alice"
            assert count.made == 1  # served from the Redis copy, no call to the Auth Server


def test_nothing_to_verify_with_is_503_not_401(serve: Serve, auth_server: JwksServer) -> None:
    """Auth Server down, Redis down, cold process: the token may be fine, so not 401."""
    auth_server.available = False
    with serve(redis_url=f"redis://127.0.0.1:{free_port()}/0") as server, client_of(server) as api:
        r = api.get("/whoami", headers=bearer(auth_server.mint("alice")))
        assert r.status_code == 503, r.text
        assert r.headers["content-type"] == PROBLEM and r.headers["retry-after"]
        assert r.json()["code"] == "SERVICE_UNAVAILABLE"
        ready = httpx.get(server.url + "/readyz", timeout=10).json()
        assert ready["checks"]["auth-jwt-verify:jwks"] == {
            "ok": False,
            "critical": False,
            "error": "JwksUnavailable",
        }


def test_redis_down_is_tolerated(serve: Serve, auth_server: JwksServer) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    with serve(redis_url=closed) as server, client_of(server) as api:
        count = Requests(auth_server)
        for sub in ("alice", "bob", "carol"):
            r = api.get("/whoami", headers=bearer(auth_server.mint(sub, roles=["admin"])))
            assert r.status_code == 200 and r.json()["sub"] == sub
        assert count.made == 1  # fetched over HTTP once, then from memory


def test_readiness_reports_the_jwks(serve: Serve, auth_server: JwksServer) -> None:
    with serve() as server:
        ready = httpx.get(server.url + "/readyz", timeout=10).json()
        assert ready["checks"]["auth-jwt-verify:jwks"] == {"ok": True, "critical": False}


def test_jwks_cache_namespace_is_declared(make_settings: Callable[..., Any]) -> None:
    kernel = Kernel(make_settings(skills_enabled=["auth-jwt-verify"]))
    owner, key = kernel.cache_keys["jwks"]
    assert (owner, key.ttl_seconds) == ("auth-jwt-verify", 3600)


def test_skill_settings_do_not_clash_with_core(
    make_settings: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOUNDHIVE_AUTH_JWKS_REFETCH_COOLDOWN", "12")
    monkeypatch.setenv("SOUNDHIVE_AUTH_LEEWAY_SECONDS", "5")
    settings = make_settings(skills_enabled=["auth-jwt-verify"])
    options = Kernel(settings).skill_settings("auth-jwt-verify")
    assert (options.jwks_refetch_cooldown, options.leeway_seconds) == (12.0, 5)
    assert settings.auth_jwks_url.endswith("/jwks.json")


def test_a_key_removed_from_the_jwks_stops_verifying(serve: Serve, auth_server: JwksServer) -> None:
    with serve() as server, client_of(server) as api:
        old = auth_server.mint("alice")
        assert api.get("/whoami", headers=bearer(old)).status_code == 200
        new_key = auth_server.rotate(keep_old=False)  # the old key is revoked
        assert api.get("/whoami", headers=bearer(auth_server.mint("bob", key=new_key))).is_success
        assert_unauthorized(api.get("/whoami", headers=bearer(old)), "unknown key")


async def test_stale_keys_are_refreshed_in_the_background(auth_server: JwksServer) -> None:
    """After the TTL the known key still answers at once while a refresh runs behind it."""
    from skills.auth_jwt_verify.jwks import JwksCache

    cache = JwksCache(auth_server.url, lambda: None, ttl=1)
    count = Requests(auth_server)
    old_kid = str(auth_server.key.kid)
    assert await cache.find(old_kid) is not None and count.made == 1
    new_key = auth_server.rotate()
    cache.fetched_at -= 2  # an hour later, as far as the cache can tell
    assert await cache.find(old_kid) is not None  # answered from memory ...
    assert cache._background is not None
    await cache._background  # ... while the refresh ran in the background
    assert count.made == 2 and new_key.kid in cache.keys and not cache.stale


def test_jwks_parsing_keeps_only_public_signing_keys(jwks_server: JwksServer) -> None:
    from skills.auth_jwt_verify.jwks import parse_jwks

    signing = JwksServer.new_key("sig-1").as_dict(private=True)
    document = {
        "keys": [
            {"kty": "oct", "kid": "hmac", "k": b64(b"secret-secret-secret")},
            {**JwksServer.new_key("enc-1").as_dict(private=False), "use": "enc"},
            {"kty": "RSA", "kid": "broken", "n": "AQAB"},
            "not-a-key",
            signing,
        ]
    }
    keys = parse_jwks(document)
    assert list(keys) == ["sig-1"]
    assert not keys["sig-1"].is_private  # private members published by mistake are dropped
    bad_documents: list[Any] = [{}, {"keys": "x"}, {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}, []]
    for bad in bad_documents:
        with pytest.raises(ValueError):
            parse_jwks(bad)
