"""HMAC-SHA256 signed URLs for the ``local`` backend — the API's own "presigned URLs".

A grant names the method, key, absolute expiry and (for PUT) the exact content type and
length, so a URL cannot be reused for another object, verb, type or size. The HMAC key is
derived from ``settings.secret()`` with a purpose label, so it never equals the key other
features sign with.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass

from core.storage.errors import InvalidSignature, SignatureExpired

_PURPOSE = b"soundhive/storage-url/v1"


@dataclass(frozen=True)
class Grant:
    """What one signed URL allows."""

    method: str
    key: str
    expires: int
    content_type: str = ""
    length: int | None = None
    download_name: str = ""

    def canonical(self) -> bytes:
        length = "" if self.length is None else str(self.length)
        fields = (self.method, self.key, str(self.expires), self.content_type, length)
        return "\n".join((*fields, self.download_name)).encode()


class UrlSigner:
    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).digest()

    def sign(self, grant: Grant) -> str:
        mac = hmac.new(self._key, grant.canonical(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def query(self, grant: Grant) -> dict[str, str]:
        """The query parameters that carry ``grant``; ``sig`` last, for readability."""
        params = {"expires": str(grant.expires)}
        if grant.content_type:
            params["ct"] = grant.content_type
        if grant.length is not None:
            params["len"] = str(grant.length)
        if grant.download_name:
            params["dl"] = grant.download_name
        params["sig"] = self.sign(grant)
        return params

    def verify(
        self, method: str, key: str, params: Mapping[str, str], now: float | None = None
    ) -> Grant:
        """The grant a request's query proves, or 403 ``INVALID_SIGNATURE``/``SIGNATURE_EXPIRED``.

        The MAC is checked before the expiry, so a tampered expiry is "invalid", not "expired".
        """
        try:
            length = params.get("len")
            grant = Grant(
                method=method,
                key=key,
                expires=int(params["expires"]),
                content_type=params.get("ct", ""),
                length=None if length is None else int(length),
                download_name=params.get("dl", ""),
            )
            signature = params["sig"]
        except (KeyError, ValueError):
            raise InvalidSignature(
                "The URL is missing its signature or has a malformed one."
            ) from None
        if not hmac.compare_digest(signature.encode(), self.sign(grant).encode()):
            raise InvalidSignature("The URL signature does not match; request a new URL.")
        if (time.time() if now is None else now) > grant.expires:
            raise SignatureExpired("The URL has expired; request a new one.")
        return grant
