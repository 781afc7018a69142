"""Schema fuzzing: schemathesis sends generated requests to every operation of the OpenAPI
document, over real HTTP to the live server, with a valid token and without one.

Each response must not be a 5xx, must use a documented status code and content type, and its
body must match the documented schema (problems included: the kernel documents them, see
``core.app.document_problems``). The CI run is short (``SOUNDHIVE_FUZZ_EXAMPLES``, default 8
random cases per operation on top of the schema's examples and the boundary/negative cases of
the coverage phase, fixed seed); ``bench/fuzz.py`` runs the long, random version.

The schema is built at collection time from an app made in-process with the same skills as
the live server (pytest parametrization needs the operations before fixtures exist;
``schemathesis.pytest.from_fixture`` does not work with pytest 9), and
``test_fuzzed_schema_is_the_served_one`` checks the two documents are the same.

Special cases: ``GET /notifications/stream`` is a server-sent event stream that stays open
for an authenticated caller, so only the anonymous run (401 at once) covers it; with random
ids ``GET /tracks/{id}/events`` answers 404 before streaming, so it is fuzzed like any other
route, as are the ``/storage/{key}`` routes, which refuse unsigned requests (400/403) before
reading a body. Per-route rate limits (uploads, plays, reports) may answer 429: documented,
so accepted.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig

from core.app import create_app
from core.settings import Settings
from core.testing.jwks import JwksServer
from core.testing.live import LiveServer
from core.testing.plugin import Api, Services, wipe

EXAMPLES = int(os.environ.get("SOUNDHIVE_FUZZ_EXAMPLES", "8"))
SEED = int(os.environ.get("SOUNDHIVE_FUZZ_SEED", "20260601"))
# Requests a schema cannot describe are refused by rules of the operation, with a problem:
# 422 (CANNOT_FOLLOW_SELF, INVALID_CURSOR, reserved handles, bpm_min > bpm_max …), 410 (an
# expired upload), 413/415 (too large / not audio at upload initiation), 416 (byte ranges).
ACCEPTED_FOR_VALID_INPUT = [
    "2xx", "3xx", "401", "403", "404", "409", "410", "413", "415", "416", "422", "429",
]  # fmt: skip
CONFIG: dict[str, Any] = {
    "seed": SEED,
    "request-timeout": 15,
    "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
    "generation": {
        "max-examples": EXAMPLES,
        "database": os.environ.get("SOUNDHIVE_FUZZ_DATABASE", "none"),
    },
    "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED_FOR_VALID_INPUT}},
}
STREAMS = r"^/api/v1/notifications/stream$"
# schemathesis's own strategies trip a Hypothesis deprecation warning: not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")


def _document() -> dict[str, Any]:
    """The OpenAPI document of the app the live server runs (same installed and enabled
    skills: both read ``SOUNDHIVE_SKILLS_*`` from the environment)."""
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, env="test", data_dir=Path(data_dir), log_level="WARNING", log_json=False
        )
        app = create_app(settings)
        return app.openapi()


DOCUMENT = _document()
schema = schemathesis.openapi.from_dict(DOCUMENT, config=SchemathesisConfig.from_dict(CONFIG))


@pytest.fixture(scope="module")
def fuzz_api(
    live_server: LiveServer,
    jwks_server: JwksServer,
    soundhive_services: Services,
    soundhive_data_dir: Path,
) -> Iterator[Api]:
    """One client for the whole module, on an empty database (emptied again afterwards):
    wiping between the ~150 generated tests would only cost time."""
    wipe(soundhive_services.database_url, soundhive_services.redis_url, soundhive_data_dir)
    with Api(live_server.url, jwks_server) as client:
        yield client
    wipe(soundhive_services.database_url, soundhive_services.redis_url, soundhive_data_dir)


def caller(case: Any) -> str:
    """An account per operation: one that deletes itself (``DELETE /users/me``) or gets
    rate-limited must not turn every later operation into 403/429."""
    return "fuzz-" + uuid.uuid5(uuid.NAMESPACE_URL, case.operation.label).hex[:12]


@schema.exclude(path_regex=STREAMS).parametrize()
def test_fuzz_with_a_token(case: Any, fuzz_api: Api, live_server: LiveServer) -> None:
    """An admin token: the moderation routes are fuzzed past their role check too."""
    case.call_and_validate(base_url=live_server.url, headers=fuzz_api.auth(caller(case), "admin"))


@schema.parametrize()
def test_fuzz_without_a_token(case: Any, fuzz_api: Api, live_server: LiveServer) -> None:
    case.call_and_validate(base_url=live_server.url)


def test_fuzzed_schema_is_the_served_one(fuzz_api: Api) -> None:
    """The generated tests above cover exactly what the live server documents."""
    assert fuzz_api.get("/openapi.json").json() == DOCUMENT


def test_every_documented_error_is_a_problem() -> None:
    """Clients can rely on one error shape: every 4xx/5xx response of every operation
    (bar the readiness probe's own body) is ``application/problem+json`` with ``Problem``."""
    wrong = [
        f"{method.upper()} {path} {status}"
        for path, operations in DOCUMENT["paths"].items()
        for method, operation in operations.items()
        for status, response in operation["responses"].items()
        if status[0] in "45" and path != "/readyz"
        if response.get("content", {}).get("application/problem+json", {}).get("schema")
        != {"$ref": "#/components/schemas/Problem"}
    ]
    assert wrong == []
    assert "HTTPValidationError" not in DOCUMENT["components"]["schemas"]


def test_common_problems_are_documented_where_they_can_happen() -> None:
    """401/403 where a token is read, 422 where there is input, 400/413 where there is a
    body, 429 on the API, 503 everywhere but the probes."""
    paths = DOCUMENT["paths"]
    assert set(paths["/api/v1/users/me"]["patch"]["responses"]) >= {
        "400", "401", "413", "422", "429", "503",
    }  # fmt: skip
    assert {"401", "403"} <= set(paths["/api/v1/users/by-handle/{handle}"]["get"]["responses"])
    # the dev issuer's keys: no token read, not under the rate-limited /api
    assert set(paths["/.well-known/jwks.json"]["get"]["responses"]) == {"200", "503"}
    assert set(paths["/api/v1/feed"]["get"]["responses"]) >= {"401", "422", "429", "503"}
    assert "401" not in paths["/storage/{key}"]["get"]["responses"]
    assert "429" not in paths["/storage/{key}"]["get"]["responses"]
    assert set(paths["/healthz"]["get"]["responses"]) == {"200"}
    assert paths["/readyz"]["get"]["responses"]["503"]["content"]["application/json"]


@pytest.mark.parametrize(
    ("method", "path", "body", "params"),
    [
        # caught by the skill's validator (with the field's loc)
        ("PATCH", "/api/v1/users/me", {"bio": "a\x00b"}, None),
        # lone surrogates pass pydantic's plain str: the kernel's safety net answers 422
        ("PATCH", "/api/v1/users/me", {"display_name": "\ud800"}, None),
        ("PATCH", "/api/v1/users/me", {"bio": "x\udfff"}, None),
        ("POST", "/api/v1/playlists", {"title": "nul\x00title"}, None),
        ("GET", "/api/v1/admin/audit-log", None, {"action": "track.\x00"}),
        ("GET", "/api/v1/search/tracks", None, {"q": "\x00"}),
        ("GET", "/api/v1/users/by-handle/a%00b", None, None),
    ],
)
def test_text_postgres_cannot_store_is_a_422(
    fuzz_api: Api, method: str, path: str, body: Any, params: dict[str, str] | None
) -> None:
    """PostgreSQL refuses NUL characters and psycopg cannot encode lone surrogates: a client
    sending them gets 422 (or a plain answer where the text is only searched), never 5xx."""
    # json.dumps escapes a lone surrogate (as a JavaScript client would send it)
    content = json.dumps(body).encode() if body is not None else None
    response = fuzz_api.request(
        method,
        path,
        content=content,
        params=params,
        headers={**fuzz_api.auth("nul-sender", "admin"), "Content-Type": "application/json"},
    )
    assert response.status_code < 500, response.text
    if body is not None:
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "VALIDATION_FAILED"


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = DOCUMENT["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    if "anyOf" in node:  # Optional[X]: take X
        node = next((_resolve(n) for n in node["anyOf"] if n.get("type") != "null"), node)
    return node


def _value(node: dict[str, Any], text: str) -> Any:
    """A value of the schema's type, ``text`` for a free-text string."""
    node = _resolve(node)
    if "enum" in node:
        return node["enum"][0]
    kind = node.get("type")
    if kind == "array":
        return [_value(node.get("items", {}), text)]
    if kind in ("integer", "number"):
        return max(1, node.get("minimum", 1))
    if kind == "boolean":
        return True
    if kind == "object":
        return {}
    return str(uuid.uuid4()) if node.get("format") == "uuid" else text


def _is_text(node: dict[str, Any]) -> bool:
    node = _resolve(node)
    if node.get("type") == "array":
        return _is_text(node.get("items", {}))
    return node.get("type") == "string" and "enum" not in node and "format" not in node


def _bodies(schema: dict[str, Any], text: str) -> Iterator[dict[str, Any]]:
    """One body per free-text property, ``text`` there and valid values elsewhere (the
    model's first example, else its required properties): a mistake in another field must
    not stop the request before the text reaches the database."""
    node = _resolve(schema)
    properties = node.get("properties", {})
    base = next(iter(node.get("examples", [])), None)
    if base is None:
        base = {name: _value(properties[name], "sample") for name in node.get("required", [])}
    for name, sub in properties.items():
        if _is_text(sub):
            yield {**base, name: _value(sub, text)}


def _unstorable_requests(text: str) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """``(method, path template, url, request kwargs)``: ``text`` in each free-text path and
    query parameter (if a URL can carry it) and body property of every operation, one at a
    time."""
    in_urls = text.encode("utf-8", "surrogatepass").decode("utf-8", "ignore") == text
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            params = operation.get("parameters", [])
            filled = {p["name"]: _value(p["schema"], "ok") for p in params if p["in"] == "path"}
            url = path.format(**filled)
            for param in params if in_urls else ():
                name = param["name"]
                if not _is_text(param["schema"]):
                    continue
                if param["in"] == "path":
                    yield method, path, path.format(**{**filled, name: quote(text, safe="")}), {}
                elif param["in"] == "query":
                    yield method, path, url, {"params": {name: text}}
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            for content in _bodies(body["schema"], text) if body else ():
                # json.dumps writes a lone surrogate as a backslash-u escape, as browsers do
                yield method, path, url, {"content": json.dumps(content).encode()}


@pytest.mark.parametrize("text", ["a\x00b", "a\ud800b"], ids=["nul", "lone-surrogate"])
def test_unstorable_text_anywhere_is_never_a_5xx(fuzz_api: Api, text: str) -> None:
    """Generated from the document: NUL (PostgreSQL refuses it) and a lone surrogate (not
    UTF-8; only JSON bodies can carry one) in every free-text parameter and body string of
    every operation. Random fuzzing rarely hits one character in one field; this always does."""
    errors = []
    for method, template, url, extra in _unstorable_requests(text):
        if template == "/api/v1/notifications/stream":
            continue  # an open event stream, see the module docstring
        sub = "unstorable-" + uuid.uuid5(uuid.NAMESPACE_URL, method + template).hex[:12]
        headers = {**fuzz_api.auth(sub, "admin"), "Content-Type": "application/json"}
        response = fuzz_api.request(method.upper(), url, headers=headers, **extra)
        if response.status_code >= 500:
            errors.append(f"{method.upper()} {url} {extra}: {response.status_code}")
    assert errors == [], "\n".join(errors)


def test_deleted_and_banned_accounts_get_documented_answers(fuzz_api: Api) -> None:
    """Fuzzing runs with fresh accounts; this sweep calls every operation as a deleted and
    as a banned account (random ids, empty bodies): the 403s they get (ACCOUNT_DELETED,
    ACCOUNT_BANNED) and everything else must be documented, and errors are problems."""
    deleted, banned = fuzz_api.auth("sweep-deleted"), fuzz_api.auth("sweep-banned")
    assert fuzz_api.delete("/api/v1/users/me", headers=deleted).status_code == 204
    banned_id = fuzz_api.get("/api/v1/users/me", headers=banned).json()["id"]
    ban = fuzz_api.post(
        f"/api/v1/admin/users/{banned_id}/ban", json={}, headers=fuzz_api.auth("sweep-mod", "admin")
    )
    assert ban.status_code == 200, ban.text
    wrong = []
    for path, operations in DOCUMENT["paths"].items():
        if path == "/api/v1/notifications/stream":
            continue  # a banned account may read: the stream would stay open
        for method, operation in operations.items():
            values = {
                p["name"]: _value(p["schema"], "abc")
                for p in operation.get("parameters", [])
                if p["in"] == "path"
            }
            body = {} if "requestBody" in operation else None
            for who, headers in (("deleted", deleted), ("banned", banned)):
                response = fuzz_api.request(
                    method.upper(), path.format(**values), json=body, headers=headers
                )
                status = str(response.status_code)
                if status not in operation["responses"]:
                    wrong.append(f"{who} {method.upper()} {path}: {status} {response.text[:80]}")
                elif (
                    status[0] in "45"
                    and response.headers["content-type"] != "application/problem+json"
                ):
                    wrong.append(f"{who} {method.upper()} {path}: {status} is not a problem")
    assert wrong == [], "\n".join(wrong)


def test_405_lists_every_method_of_the_path(fuzz_api: Api) -> None:
    """RFC 9110: ``Allow`` names all methods the resource supports, not just the first
    route that matched the path."""
    response = fuzz_api.put("/api/v1/users/me", json={})
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "METHOD_NOT_ALLOWED"
    assert response.headers["allow"] == "DELETE, GET, PATCH"
    missing = httpx.request("TRACE", f"{fuzz_api.base_url}/api/v1/tracks/{uuid.uuid4()}")
    assert missing.headers["allow"] == "DELETE, GET, PATCH"
