"""dev-auth-issuer: its JWKS endpoint, ``soundhive token`` as a real subprocess, and the
end-to-end loop with auth-jwt-verify fetching the key from the same live app."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from joserfc import jwk

from core.app import create_app
from core.auth import CurrentPrincipal
from core.kernel import Kernel
from core.plugins import SkillError
from core.settings import DEV_AUDIENCE, DEV_ISSUER, Settings
from core.skill import Skill, hookimpl
from core.testing.live import LiveServer

JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
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


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def cli(soundhive_env: dict[str, str], data_dir: Path, tmp_path: Path) -> Callable[..., Any]:
    """Run ``soundhive`` in a subprocess, trusting the dev issuer (no issuer/audience set)."""
    env = {
        key: value
        for key, value in {**os.environ, **soundhive_env}.items()
        if key not in ("SOUNDHIVE_AUTH_ISSUER", "SOUNDHIVE_AUTH_AUDIENCE")
    }
    env["SOUNDHIVE_DATA_DIR"] = str(data_dir)

    def run(*args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "core.cli", *args],
            env={**env, **extra_env}, cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )

    return run


@pytest.fixture
def dev_app(make_settings: Callable[..., Any], data_dir: Path) -> Iterator[LiveServer]:
    """A live app with the dev issuer and auth-jwt-verify; its JWKS URL is its own endpoint."""
    settings = make_settings(
        skills_enabled=["auth-jwt-verify", "dev-auth-issuer", "whoami-test"],
        data_dir=data_dir, auth_issuer=None, auth_audience=None,
    )
    server = LiveServer(create_app(settings, extra_plugins=[WhoAmI()]))
    # LiveServer picks its port in __init__; the verifier reads the URL on first use.
    settings.auth_jwks_url = f"{server.url}/.well-known/jwks.json"
    with server:
        yield server


def test_jwks_endpoint_serves_the_public_key_only(
    dev_app: LiveServer, data_dir: Path, make_settings: Callable[..., Any]
) -> None:
    r = httpx.get(dev_app.url + "/.well-known/jwks.json", timeout=10)
    assert r.status_code == 200
    assert r.headers["cache-control"] == "public, max-age=300"
    (key,) = r.json()["keys"]
    assert (key["kty"], key["alg"], key["use"]) == ("RSA", "RS256", "sig")
    assert not PRIVATE_MEMBERS & key.keys()
    assert key["kid"] == jwk.RSAKey.import_key(key).thumbprint()  # stable: derived from the key

    path = data_dir / "dev-issuer" / "signing-key.jwk.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text())["d"]  # the private half stays on disk

    again = httpx.get(dev_app.url + "/.well-known/jwks.json", timeout=10).json()
    assert again == r.json()
    kernel = Kernel(make_settings(skills_enabled=["dev-auth-issuer"], data_dir=data_dir))
    assert any(route.endswith(" /.well-known/jwks.json") for route in _routes(kernel))


def _routes(kernel: Kernel) -> list[str]:
    from fastapi import FastAPI

    from core.app import mount_skill_routers

    mount_skill_routers(FastAPI(), kernel)
    return kernel.skills["dev-auth-issuer"].routes


def test_token_command_prints_only_a_token_the_api_accepts(
    cli: Callable[..., Any], dev_app: LiveServer
) -> None:
    started = int(time.time())
    done = cli("token", "--sub", "alice", "--role", "admin", "--role", "moderator",
               "--email", "alice@example.com", "--expires-in", "600")
    assert done.returncode == 0, done.stderr
    token = done.stdout.removesuffix("\n")
    assert JWT_SHAPE.match(token), done.stdout  # one line: the token and nothing else

    claims = claims_of(token)
    assert (claims["iss"], claims["aud"], claims["sub"]) == (DEV_ISSUER, DEV_AUDIENCE, "alice")
    assert claims["exp"] - claims["iat"] == 600 and claims["iat"] >= started - 1

    r = httpx.get(
        dev_app.url + "/api/v1/whoami", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "sub": "alice", "roles": ["admin", "moderator"], "email": "alice@example.com"
    }


def test_dev_banner_gives_a_working_admin_token(dev_app: LiveServer) -> None:
    kernel = dev_app.kernel
    banners = dict(kernel.call_each("dev_banner", settings=kernel.settings))
    lines = banners["dev-auth-issuer"]
    (header_line,) = [line for line in lines if "Authorization: Bearer " in line]
    token = header_line.split("Bearer ", 1)[1]
    assert claims_of(token)["roles"] == ["admin"]
    r = httpx.get(dev_app.url + "/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert r.json() == {"sub": "dev", "roles": ["admin"], "email": None}


def test_token_command_needs_a_subject(cli: Callable[..., Any]) -> None:
    for args in (["--sub", "  "], ["--sub", "a", "--expires-in", "0"], []):
        done = cli("token", *args)
        assert done.returncode == 2 and done.stdout == "", (args, done.stdout)


PROD: dict[str, Any] = {
    "env": "prod",
    "database_url": "postgresql://db.internal/soundhive",
    "redis_url": "redis://cache.internal:6379/0",
    "auth_jwks_url": "https://auth.example.com/.well-known/jwks.json",
    "auth_issuer": "https://auth.example.com",
    "auth_audience": "soundhive",
    "secret_key": "s" * 40,
}


def test_refuses_to_load_in_prod() -> None:
    settings = Settings(_env_file=None, skills_enabled=["dev-auth-issuer"], **PROD)  # type: ignore[call-arg]
    with pytest.raises(SkillError, match=r"skill 'dev-auth-issuer' refuses to start: .*production"):
        Kernel(settings)
    # Disabled, as production must have it, the same settings start fine.
    Kernel(Settings(_env_file=None, skills_enabled=[], **PROD))  # type: ignore[call-arg]


def test_token_command_mints_nothing_in_prod(cli: Callable[..., Any], data_dir: Path) -> None:
    env = {f"SOUNDHIVE_{name.upper()}": value for name, value in PROD.items()}
    done = cli("token", "--sub", "alice", **env)
    assert done.returncode != 0 and done.stdout == ""
    assert not (data_dir / "dev-issuer").exists()


def test_key_is_created_once_and_never_replaced(data_dir: Path) -> None:
    from skills.dev_auth_issuer import keys

    path = keys.key_path(data_dir)
    keys._create(path)
    first = path.read_text()
    keys._create(path)  # a second process racing to create it keeps the first key
    assert path.read_text() == first
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left behind
    path.chmod(0o644)
    loaded = keys._load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert loaded.kid == json.loads(first)["kid"] and loaded.is_private
