"""Bearer token → :class:`core.auth.Principal`, refusing every JWT attack we know of.

Checks run cheapest first: size, structure, header (algorithm allow-list, no key-carrying
or critical headers), key lookup, signature, then claims. Every failure is a 401 whose
detail names the kind of problem but never echoes the token or library internals.
"""

from __future__ import annotations

import json
import logging
import time
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from joserfc import jws, jwt
from joserfc.errors import ClaimError, ExpiredTokenError, JoseError, MissingClaimError

from core.auth import Principal
from core.errors import ServiceUnavailable, Unauthorized
from skills.auth_jwt_verify.jwks import JwksCache, JwksUnavailable
from skills.auth_jwt_verify.settings import AuthJwtSettings

if TYPE_CHECKING:
    from starlette.requests import Request

    from core.kernel import Kernel
    from core.settings import Settings

log = logging.getLogger("soundhive.auth")

SKILL_NAME = "auth-jwt-verify"
FORBIDDEN_HEADERS = ("jku", "x5u", "jwk", "x5c")
"""Headers that point at or carry a key: following them lets the token choose its own key."""
VERIFIED_CACHE_SIZE = 10_000
VERIFIED_CACHE_SECONDS = 300.0
"""A verified token is trusted again without its signature check for at most this long (and
never past its ``exp``, and only while its ``kid`` is still in the key set)."""
INVALID_TOKEN = {"WWW-Authenticate": 'Bearer realm="soundhive", error="invalid_token"'}


def reject(detail: str) -> Unauthorized:
    """A 401 with the RFC 6750 ``invalid_token`` challenge."""
    return Unauthorized(detail, headers=dict(INVALID_TOKEN))


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header; query strings and cookies are ignored.

    ``None`` when there is no such header (another scheme is left to other skills).
    """
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    if not token:
        raise reject("Malformed bearer token.")
    return token


def parse_roles(value: object) -> frozenset[str]:
    """``roles`` as a list of strings, or one space-separated string (OAuth ``scope`` style)."""
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list) and all(isinstance(role, str) for role in value):
        return frozenset(value)
    raise reject("Token 'roles' claim must be a list of strings.")


class TokenVerifier:
    """Verifies access tokens for one kernel; everything per-request is precomputed here."""

    def __init__(self, settings: Settings, options: AuthJwtSettings, jwks: JwksCache) -> None:
        self.jwks = jwks
        self.algorithms = frozenset(settings.auth_algorithms)
        self.max_bytes = settings.max_token_bytes
        # Unknown header parameters are ignored (RFC 7515 §4); the dangerous ones are refused
        # explicitly in _check_header, before joserfc sees them.
        self._registry = jws.JWSRegistry(
            algorithms=sorted(self.algorithms), strict_check_header=False
        )
        self._registry.max_header_length = settings.max_token_bytes
        self._verified: OrderedDict[str, tuple[float, str, Principal]] = OrderedDict()
        self._claims = jwt.JWTClaimsRegistry(
            leeway=options.leeway_seconds,
            iss={"essential": True, "value": settings.effective_issuer},
            aud={"essential": True, "value": settings.effective_audience},
            sub={"essential": True},
            exp={"essential": True},
        )

    async def verify(self, token: str) -> Principal:
        """The token's principal. Tokens that passed are remembered (bounded LRU, until
        ``exp`` and at most :data:`VERIFIED_CACHE_SECONDS`): a signature check costs more CPU
        than the rest of a cached read, and clients send the same token for minutes."""
        known = self._verified.get(token)
        if known is not None:
            until, kid, principal = known
            if time.time() < until and kid in self.jwks.keys:  # its key is still published
                self._verified.move_to_end(token)
                return principal
            del self._verified[token]
        principal, kid = await self._verify(token)
        exp = principal.claims.get("exp")
        if isinstance(exp, (int, float)) and not isinstance(exp, bool):
            until = min(float(exp), time.time() + VERIFIED_CACHE_SECONDS)
            self._verified[token] = (until, kid, principal)
            if len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        return principal

    async def _verify(self, token: str) -> tuple[Principal, str]:
        if len(token) > self.max_bytes:
            raise reject(f"Token too large (limit {self.max_bytes} bytes).")
        try:
            obj = jws.extract_compact(token.encode("ascii"), registry=self._registry)
        except (JoseError, ValueError, TypeError):
            raise reject("Malformed token.") from None
        header = obj.headers()
        if not isinstance(header, dict):
            raise reject("Malformed token.")
        kid = self._check_header(header)
        try:
            key = await self.jwks.find(kid)
        except JwksUnavailable:
            raise ServiceUnavailable(
                "Tokens cannot be verified right now: the Auth Server's keys are unavailable.",
                headers={"Retry-After": "5"},
            ) from None
        if key is None:
            raise reject("Token signed with an unknown key.")
        if key.alg is not None and key.alg != header["alg"]:
            raise reject("Token algorithm does not match its key.")
        try:
            valid = jws.validate_compact(obj, key, registry=self._registry)
        except JoseError:
            valid = False
        if not valid:
            raise reject("Invalid token signature.")
        claims = self._claims_of(obj.payload)
        email = claims.get("email")
        principal = Principal(
            sub=claims["sub"],
            roles=parse_roles(claims.get("roles")),
            email=email if isinstance(email, str) else None,
            claims=claims,
        )
        return principal, kid

    def _check_header(self, header: dict[str, Any]) -> str:
        """Refuse what the header may not choose; returns the ``kid``."""
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise reject("Token algorithm not allowed.")
        for name in FORBIDDEN_HEADERS:
            if name in header:
                raise reject(f"Token header '{name}' is not accepted.")
        if "crit" in header or "b64" in header:
            raise reject("Token with critical header extensions is not accepted.")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise reject("Token header lacks a key id (kid).")
        return kid

    def _claims_of(self, payload: bytes) -> dict[str, Any]:
        try:
            claims = json.loads(payload)
        except ValueError:
            raise reject("Malformed token.") from None
        if not isinstance(claims, dict):
            raise reject("Malformed token.")
        try:
            self._claims.validate(claims)
        except ExpiredTokenError:
            raise reject("Token expired.") from None
        except MissingClaimError as exc:
            raise reject(f"Token lacks required claims: {exc.claim}.") from None
        except ClaimError as exc:
            value = claims.get(exc.claim)
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            if exc.claim in ("nbf", "iat") and numeric:
                raise reject("Token not yet valid.") from None
            raise reject(f"Token claim '{exc.claim}' is not accepted.") from None
        return claims


_verifiers: weakref.WeakKeyDictionary[Kernel, TokenVerifier] = weakref.WeakKeyDictionary()


def verifier_for(kernel: Kernel) -> TokenVerifier:
    """The kernel's verifier, built on first use (so each kernel has its own key cache)."""
    verifier = _verifiers.get(kernel)
    if verifier is None:
        options: AuthJwtSettings = kernel.skill_settings(SKILL_NAME)
        ref = weakref.ref(kernel)

        def cache() -> Any:
            owner = ref()
            return owner.cache if owner is not None else None

        jwks = JwksCache(
            kernel.settings.auth_jwks_url,
            cache,
            cooldown=options.jwks_refetch_cooldown,
            timeout=options.jwks_timeout,
        )
        verifier = _verifiers[kernel] = TokenVerifier(kernel.settings, options, jwks)
    return verifier
