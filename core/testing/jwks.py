"""A local Auth Server for tests: an RSA JWKS over real HTTP and a token minter."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joserfc import jwk, jwt


class JwksServer:
    """Serves ``/jwks.json``; keys can be rotated and the server can be taken down."""

    def __init__(self, issuer: str = "https://auth.test", audience: str = "soundhive") -> None:
        self.issuer, self.audience = issuer, audience
        self.keys: list[jwk.RSAKey] = [self.new_key()]
        self.requests = 0
        self.available = True
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                if not server.available or self.path.split("?")[0] != "/jwks.json":
                    self.send_response(503 if not server.available else 404)
                    self.end_headers()
                    return
                body = json.dumps(
                    {"keys": [k.as_dict(private=False) for k in server.keys]}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @staticmethod
    def new_key(kid: str | None = None) -> jwk.RSAKey:
        return jwk.RSAKey.generate_key(
            2048, parameters={"kid": kid or uuid.uuid4().hex[:12], "use": "sig", "alg": "RS256"}
        )

    @property
    def key(self) -> jwk.RSAKey:
        return self.keys[-1]

    def rotate(self, *, keep_old: bool = True) -> jwk.RSAKey:
        key = self.new_key()
        self.keys = [*self.keys, key] if keep_old else [key]
        return key

    def mint(
        self,
        sub: str,
        *,
        roles: list[str] | tuple[str, ...] = (),
        email: str | None = None,
        expires_in: int = 3600,
        key: jwk.RSAKey | None = None,
        header: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": sub,
            "iat": now,
            "nbf": now - 5,
            "exp": now + expires_in,
            "roles": list(roles),
        }
        if email:
            payload["email"] = email
        payload.update(claims)
        signing_key = key or self.key
        head = {"alg": "RS256", "kid": signing_key.kid, **(header or {})}
        return jwt.encode(head, payload, signing_key)

    def start(self) -> JwksServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
