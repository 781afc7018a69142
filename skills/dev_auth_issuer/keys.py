"""The dev issuer's RSA key (one per data dir, created on first use) and the token minter.

The private key lives in ``<data_dir>/dev-issuer/signing-key.jwk.json`` with mode 0600. It
is written to a temporary file and hard-linked into place, so two processes starting together
(`soundhive dev` runs API, worker and scheduler) never overwrite each other's key.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from joserfc import jwk, jwt

if TYPE_CHECKING:
    from core.settings import Settings

KEY_DIR = "dev-issuer"
KEY_FILE = "signing-key.jwk.json"
ALGORITHM = "RS256"

_loaded: dict[Path, jwk.RSAKey] = {}
_lock = threading.Lock()


def key_path(data_dir: Path | str) -> Path:
    return (Path(data_dir) / KEY_DIR / KEY_FILE).resolve()


def signing_key(data_dir: Path | str) -> jwk.RSAKey:
    """The data dir's private key, created on first use and then kept in memory."""
    path = key_path(data_dir)
    key = _loaded.get(path)
    if key is None:
        with _lock:
            key = _loaded.get(path)
            if key is None:
                key = _loaded[path] = _load_or_create(path)
    return key


def loaded_jwks(data_dir: Path | str) -> dict[str, Any] | None:
    """The public JWKS if the key is already in memory (the endpoint's fast path)."""
    key = _loaded.get(key_path(data_dir))
    return None if key is None else _jwks_of(key)


def public_jwks(data_dir: Path | str) -> dict[str, Any]:
    """The JWKS the API publishes: the public half only."""
    return _jwks_of(signing_key(data_dir))


def _jwks_of(key: jwk.RSAKey) -> dict[str, Any]:
    return {"keys": [dict(key.as_dict(private=False))]}


def mint(
    settings: Settings,
    sub: str,
    *,
    roles: Iterable[str] = (),
    email: str | None = None,
    expires_in: int = 3600,
) -> str:
    """A signed access token shaped like the Auth Server's, for the configured issuer/audience."""
    key = signing_key(settings.data_dir)
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings.effective_issuer,
        "aud": settings.effective_audience,
        "sub": sub,
        "iat": now,
        "nbf": now,
        "exp": now + expires_in,
        "jti": uuid.uuid4().hex,
        "roles": list(roles),
    }
    if email:
        claims["email"] = email
    header = {"alg": ALGORITHM, "kid": key.kid, "typ": "JWT"}
    return jwt.encode(header, claims, key, algorithms=[ALGORITHM])


def _load_or_create(path: Path) -> jwk.RSAKey:
    if not path.exists():
        _create(path)
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        path.chmod(0o600)  # a private key readable by others is tightened, not trusted as is
    key = jwk.RSAKey.import_key(json.loads(path.read_text()))
    if not key.is_private:
        raise ValueError(f"{path} holds no private key")
    return key


def _create(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = jwk.RSAKey.generate_key(2048, parameters={"use": "sig", "alg": ALGORITHM})
    key.ensure_kid()  # RFC 7638 thumbprint: stable for the key's lifetime
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(key.as_dict(private=True), handle)
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)  # atomic, and never replaces a key written first
    finally:
        temporary.unlink(missing_ok=True)
