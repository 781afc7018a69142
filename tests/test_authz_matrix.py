"""The authorization matrix (OWASP API1 object level, API3 property level, API5 function
level), generated from the live app's routes and the rule book in ``tests/authz_support.py``.

One world is built for the module (users A, B, banned C, a moderator; A's public, private,
unlisted and hidden tracks, playlists, comments, a notification and an unfinished upload),
with a real worker so notifications and the search index exist; the worker is stopped once
background work has settled, so a snapshot of every table proves refused requests changed
nothing. Then, for every route:

* B (and anonymous callers) reading an object they may not see get 404; changing A's objects
  403 or 404; acting on A's private/hidden objects (like, comment, play, fork, follow,
  report, finalize) 404 — and not one row changes;
* ``/admin/*`` answers 403 to a normal user and 401 without a token;
* no response to B or an anonymous caller mentions A's private, hidden or banned content;
* ``limit`` above 100 is 422 on every list; every body over the JSON cap is 413;
* extra fields (``owner_id``, counts, ``status``, ``roles`` …) are 422 on every body.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter

from core.app import create_app
from core.plugins import SkillError
from core.settings import Settings
from core.skill import Skill, hookimpl
from core.testing.jwks import JwksServer
from core.testing.live import LiveServer
from core.testing.plugin import Api, Services, wipe
from tests.authz_support import (
    ROUTES,
    AppRoute,
    Kind,
    Rule,
    World,
    app_routes,
    build_world,
    fill,
    snapshot,
    start_worker,
    stop_worker,
    substitute,
    wait_until_idle,
)
from tests.music_helpers import initiate, put_bytes

Call = tuple[str, str, Any]  # (method, url, json body or None)


@pytest.fixture(scope="module")
def world(
    live_server: LiveServer,
    jwks_server: JwksServer,
    soundhive_services: Services,
    soundhive_data_dir: Path,
    soundhive_env: dict[str, str],
    migrated_database: str,
) -> Iterator[tuple[Api, World]]:
    wipe(soundhive_services.database_url, soundhive_services.redis_url, soundhive_data_dir)
    worker = start_worker(soundhive_env)
    try:
        with Api(live_server.url, jwks_server) as api:
            built = build_world(api, soundhive_services)
            wait_until_idle(soundhive_services)
            stop_worker(worker)
            yield api, built
    finally:
        stop_worker(worker)
        wipe(soundhive_services.database_url, soundhive_services.redis_url, soundhive_data_dir)


@pytest.fixture(scope="module")
def routes(live_server: LiveServer) -> list[AppRoute]:
    return app_routes(live_server.app)


def rules(route: AppRoute, kind: Kind) -> list[Rule]:
    return [rule for rule in ROUTES[(route.method, route.path)].rules if rule.kind == kind]


def changed_tables(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    return sorted(
        table for table in before.keys() | after.keys() if before.get(table) != after.get(table)
    )


# -- the rule book covers the app -------------------------------------------------------------
def test_every_route_is_classified(routes: list[AppRoute]) -> None:
    """A new route fails here until tests/authz_support.py says who may call it."""
    unknown = [f"{r.method} {r.path}" for r in routes if (r.method, r.path) not in ROUTES]
    assert unknown == [], "classify these routes in tests/authz_support.py ROUTES"
    assert len(routes) > 60
    for route in routes:
        kinds = ROUTES[(route.method, route.path)].kinds
        assert (Kind.ADMIN in kinds) == route.path.startswith("/api/v1/admin/"), route
        if Kind.OBJECT_WRITE in kinds or Kind.OBJECT_READ in kinds:
            assert route.path_params, f"{route} names no object"


@pytest.mark.parametrize(("method", "path"), [("GET", "/healthz"), ("PUT", "/storage/{key:path}")])
def test_a_skill_cannot_take_over_a_kernel_route(method: str, path: str) -> None:
    """The matrix trusts the kernel's routes (signed storage, probes): a skill's public router
    claiming one is a start-up error, not a silent second handler."""
    router = APIRouter()
    router.add_api_route(path, lambda: {}, methods=[method])
    namespace = {
        "SKILL": Skill(name="shadow", version="1.0"),
        "register_public_routers": staticmethod(hookimpl(lambda kernel: [router])),
    }
    shadow = type("shadow", (), namespace)()
    settings = Settings(_env_file=None, env="test", skills_enabled=["shadow"])  # type: ignore[call-arg]
    with pytest.raises(SkillError, match=rf"'shadow' claims route {method} .*'core'"):
        create_app(settings, extra_plugins=[shadow])


# -- B and anonymous callers against A's objects ----------------------------------------------
def attacks(route: AppRoute, world: World) -> Iterator[tuple[str, Call, set[int], set[int]]]:
    """``(what, call, statuses for B, statuses for anonymous)`` for one route."""
    spec = ROUTES[(route.method, route.path)]
    values, invisible = {**world.values(), **world.visible()}, world.invisible()
    anonymous_read = {404} if spec.anonymous else {401, 404}
    for rule in spec.rules:
        if rule.kind == Kind.OBJECT_WRITE:
            body = substitute(rule.body, values)
            yield "A's object", (route.method, fill(route.path, values), body), {403, 404}, {401}
        elif rule.kind in (Kind.OBJECT_READ, Kind.OBJECT_ACT):
            own = {name: world.own_of_b()[name] for name in rule.own}
            in_body = [v[1:] for v in (rule.body or {}).values() if str(v).startswith("$")]
            targets = [p for p in (*route.path_params, *in_body) if p not in own]
            expected_anonymous = anonymous_read if rule.kind == Kind.OBJECT_READ else {401}
            if rule.kind == Kind.OBJECT_ACT and spec.anonymous:
                expected_anonymous = {404}
            for target in targets:
                for value in invisible.get(target, []):
                    chosen = {**values, **own, target: value}
                    call = (route.method, fill(route.path, chosen), substitute(rule.body, chosen))
                    yield f"{target}={value}", call, {404}, expected_anonymous


def send(api: Api, call: Call, headers: dict[str, str] | None) -> httpx.Response:
    method, url, body = call
    try:
        return api.request(method, url, json=body, headers=headers or {}, timeout=10)
    except httpx.ReadTimeout:  # an event stream that opened: it should have been a 404
        return httpx.Response(599, request=httpx.Request(method, url))


def test_other_users_cannot_read_change_or_act_on_owned_objects(
    world: tuple[Api, World], routes: list[AppRoute], soundhive_services: Services
) -> None:
    """API1: every route that reads or changes an object answers B (and anonymous callers)
    404 for what they may not see and 403/404 for what they may not change; afterwards not
    one row in the database differs."""
    api, w = world
    before = snapshot(soundhive_services)
    wrong, tried = [], 0
    for route in routes:
        for what, call, for_b, for_anonymous in attacks(route, w):
            for who, headers, expected in (
                ("B", w.b.headers, for_b),
                ("anonymous", None, for_anonymous),
            ):
                tried += 1
                response = send(api, call, headers)
                if response.status_code not in expected:
                    got, want = response.status_code, sorted(expected)
                    wrong.append(f"{who} {call[0]} {call[1]} ({what}): {got}, wanted {want}")
    assert tried > 100
    assert wrong == [], "\n".join(wrong)
    assert changed_tables(before, snapshot(soundhive_services)) == []


def test_admin_routes_refuse_normal_users_and_anonymous_callers(
    world: tuple[Api, World], routes: list[AppRoute], soundhive_services: Services
) -> None:
    """API5: every /admin route is 403 FORBIDDEN for a valid non-moderator token and 401
    (with WWW-Authenticate) without one, and changes nothing."""
    api, w = world
    values = {**w.values(), **w.visible()}
    before = snapshot(soundhive_services)
    wrong = []
    admin = [r for r in routes if Kind.ADMIN in ROUTES[(r.method, r.path)].kinds]
    assert len(admin) >= 10
    for route in admin:
        call = (
            route.method,
            fill(route.path, values),
            substitute(rules(route, Kind.ADMIN)[0].body, values),
        )
        as_b, anonymous = send(api, call, w.b.headers), send(api, call, None)
        if as_b.status_code != 403 or as_b.json().get("code") != "FORBIDDEN":
            wrong.append(f"B {call[0]} {call[1]}: {as_b.status_code} {as_b.text[:80]}")
        if anonymous.status_code != 401 or "www-authenticate" not in anonymous.headers:
            wrong.append(f"anonymous {call[0]} {call[1]}: {anonymous.status_code}")
    assert wrong == [], "\n".join(wrong)
    assert changed_tables(before, snapshot(soundhive_services)) == []


def test_routes_for_signed_in_users_refuse_anonymous_callers(
    world: tuple[Api, World], routes: list[AppRoute]
) -> None:
    """Everything about "my" data (profile, likes, history, feed, notifications, uploads,
    recommendations …) is 401 UNAUTHORIZED without a token."""
    api, w = world
    values = {**w.values(), **w.visible()}
    own = [r for r in routes if Kind.SELF in ROUTES[(r.method, r.path)].kinds]
    assert len(own) >= 12
    wrong = []
    for route in own:
        body = substitute(ROUTES[(route.method, route.path)].owner_body, values)
        response = send(api, (route.method, fill(route.path, values), body), None)
        if response.status_code != 401 or response.json()["code"] != "UNAUTHORIZED":
            wrong.append(f"{route.method} {route.path}: {response.status_code}")
    assert wrong == [], "\n".join(wrong)


# -- nothing private in any response ----------------------------------------------------------
QUERY_HINTS: dict[str, list[str]] = {
    "q": ["matrix", "Matrix t_priv"],
    "tag": ["matrixtag"],
    "mood": ["calm"],
    "unread": ["true", "false"],
}


def reads(
    document: dict[str, Any], route: AppRoute, world: World
) -> Iterator[tuple[str, dict[str, str]]]:
    """``(url, query)`` variants of one GET route: A's and B's objects in the path, each
    hinted or enumerated value of each query parameter, ``limit=100`` on lists."""
    operation = document["paths"].get(route.path, {}).get("get", {})
    enums: dict[str, list[str]] = {}
    for parameter in operation.get("parameters", []):
        schema = parameter.get("schema", {})
        options = schema.get("enum") or next(
            (s.get("enum") for s in schema.get("anyOf", []) if s.get("enum")), None
        )
        if parameter["in"] == "query" and options:
            enums[parameter["name"]] = [str(o) for o in options]
    base = {"limit": "100"} if "limit" in route.query_params else {}
    path_values = [
        {**world.values(), **world.visible()},
        {**world.values(), **world.visible(), **world.own_of_b()},
    ]
    urls = sorted({fill(route.path, values) for values in path_values})
    for url in urls:
        yield url, base
        for name in route.query_params:
            for option in QUERY_HINTS.get(name, enums.get(name, [])):
                yield url, {**base, name: option}


def read_stream(api: Api, url: str, headers: dict[str, str], seconds: float = 2.0) -> str:
    """What an event stream sends in its first seconds (replaying from the start)."""
    text, deadline = "", time.monotonic() + seconds
    with api.stream(
        "GET", url, headers={**headers, "Last-Event-ID": "0"}, timeout=seconds + 3
    ) as response:
        if response.status_code != 200:
            return response.read().decode()
        try:
            for chunk in response.iter_text():
                text += chunk
                if time.monotonic() > deadline:
                    break
        except httpx.ReadTimeout:
            pass
    return text


def test_private_hidden_and_banned_content_never_leaks(
    world: tuple[Api, World], routes: list[AppRoute]
) -> None:
    """API3 / excessive exposure: every GET route (lists, details, event streams), as B and
    as an anonymous caller, with every sort and filter: no response names A's private or
    hidden tracks, the track that went private after B liked, played and listed it, the
    private playlist, comments on a private track or hidden by moderation, A's
    notification or upload, or anything of banned C; and A's unlisted track is in no list."""
    api, w = world
    forbidden = {**w.secrets, **w.never_listed}
    document = api.get("/openapi.json").json()
    leaks, shown_public, calls = [], set(), 0
    for route in routes:
        spec = ROUTES[(route.method, route.path)]
        if route.method != "GET" or Kind.SIGNED in spec.kinds or Kind.ADMIN in spec.kinds:
            continue
        for url, query in reads(document, route, w):
            for who, headers in (("B", w.b.headers), ("anonymous", {})):
                calls += 1
                if route.streams:
                    text = read_stream(api, url, headers)
                else:
                    text = api.get(url, params=query, headers=headers).text
                leaks += [
                    f"{who} GET {url} {query}: {name}"
                    for name, secret in forbidden.items()
                    if secret in text
                ]
                if w.ids["t_pub"] in text:
                    shown_public.add(route.path)
    assert calls > 80
    assert leaks == [], "\n".join(leaks)
    # the scan is not vacuous: A's public track shows up where it should
    assert shown_public >= {
        "/api/v1/users/{user_id}/tracks",
        "/api/v1/playlists/{playlist_id}",
        "/api/v1/feed",
        "/api/v1/users/me/likes",
        "/api/v1/users/me/history",
        "/api/v1/tracks/{track_id}",
    }


# -- limits -----------------------------------------------------------------------------------
def caller_for(route: AppRoute, world: World) -> dict[str, str]:
    return world.mod.headers if route.path.startswith("/api/v1/admin/") else world.a.headers


def test_limit_is_capped_on_every_list(world: tuple[Api, World], routes: list[AppRoute]) -> None:
    """``limit`` is 1–100 everywhere: 1000 is a 422 naming ``limit``, 100 is served."""
    api, w = world
    values = {**w.values(), **w.visible()}
    lists = [r for r in routes if r.method == "GET" and "limit" in r.query_params]
    assert len(lists) >= 15
    wrong = []
    for route in lists:
        url, headers = fill(route.path, values), caller_for(route, w)
        too_many = api.get(url, params={"limit": 1000}, headers=headers)
        locs = (
            [e["loc"] for e in too_many.json().get("errors", [])]
            if too_many.status_code == 422
            else []
        )
        if locs != [["query", "limit"]]:
            wrong.append(f"GET {url}?limit=1000: {too_many.status_code} {locs}")
        most = api.get(url, params={"limit": 100}, headers=headers)
        if most.status_code != 200:
            wrong.append(f"GET {url}?limit=100: {most.status_code}")
    assert wrong == [], "\n".join(wrong)


TWO_MIB = 2 * 1024 * 1024


def big_body() -> bytes:
    return b'{"padding": "' + b"x" * TWO_MIB + b'"}'


def test_oversized_bodies_are_413_on_every_route_that_takes_one(
    world: tuple[Api, World], routes: list[AppRoute], soundhive_services: Services
) -> None:
    """2 MiB of JSON is refused before it is read, declared (Content-Length) or streamed
    (chunked), with a 413 PAYLOAD_TOO_LARGE problem; signed storage uploads are exempt."""
    api, w = world
    values = {**w.values(), **w.visible()}
    with_body = [
        r for r in routes if r.has_body and Kind.SIGNED not in ROUTES[(r.method, r.path)].kinds
    ]
    assert len(with_body) >= 20
    before = snapshot(soundhive_services)
    wrong = []
    for route in with_body:
        url = fill(route.path, values)
        headers = {**caller_for(route, w), "Content-Type": "application/json"}
        declared = api.request(route.method, url, content=big_body(), headers=headers)
        streamed = api.request(route.method, url, content=iter([big_body()]), headers=headers)
        for how, response in (("declared", declared), ("chunked", streamed)):
            if response.status_code != 413 or response.json().get("code") != "PAYLOAD_TOO_LARGE":
                wrong.append(f"{route.method} {url} ({how}): {response.status_code}")
    assert wrong == [], "\n".join(wrong)
    assert changed_tables(before, snapshot(soundhive_services)) == []
    # the audio path is not JSON: a signed 2 MiB upload still goes through
    data = b"\xff\xfb" + b"\x00" * (TWO_MIB - 2)
    ticket = initiate(api, w.a.headers, data, "audio/mpeg")
    assert ticket.status_code == 201, ticket.text
    assert put_bytes(ticket.json(), data).status_code == 201


def test_json_body_cap_is_a_setting(
    make_settings: Callable[..., Any], jwks_server: JwksServer, world: tuple[Api, World]
) -> None:
    """``SOUNDHIVE_MAX_JSON_BYTES`` moves the cap; bodies under it reach validation."""
    _, w = world
    with (
        LiveServer(create_app(make_settings(max_json_bytes=4096))) as server,
        Api(server.url, jwks_server) as api,
    ):
        over = api.patch("/api/v1/users/me", json={"bio": "x" * 5000}, headers=w.a.headers)
        assert over.status_code == 413
        assert "4096" in over.json()["detail"]
        under = api.patch("/api/v1/users/me", json={"bio": "x" * 3000}, headers=w.a.headers)
        assert under.status_code == 422  # bio is at most 500 characters: validation, not size


# -- mass assignment --------------------------------------------------------------------------
OBJECT_PATCHES = {
    "/api/v1/users/me",
    "/api/v1/tracks/{track_id}",
    "/api/v1/playlists/{playlist_id}",
    "/api/v1/comments/{comment_id}",
}


def protected_fields(world: World) -> dict[str, Any]:
    """Fields a client must never set: owners, ids, counters, states, roles, provenance."""
    return {
        "owner_id": world.b.id, "author_id": world.b.id, "id": str(uuid.uuid4()),
        "like_count": 999, "play_count": 999, "comment_count": 999, "track_count": 999,
        "followers_count": 999, "following_count": 999, "tracks_count": 999,
        "status": "ready", "roles": ["admin"], "is_banned": False, "is_hidden": False,
        "hidden": False, "forked_from_id": world.ids["pl_b"], "sub": "someone-else",
        "email": "x@example.com", "created_at": "2020-01-01T00:00:00Z",
    }  # fmt: skip


def test_mass_assignment_is_refused_and_changes_nothing(
    world: tuple[Api, World], routes: list[AppRoute], soundhive_services: Services
) -> None:
    """API3: every body refuses fields it does not define with 422 naming the field, so
    owners, counters, states and roles cannot be set; the four object PATCHes are tried
    with every protected field and the database is unchanged. Then the same bodies without
    the extra field are accepted, so the 422s were about the field."""
    api, w = world
    values = {**w.values(), **w.visible()}
    fields = protected_fields(w)
    with_body = [
        r for r in routes if r.has_body and Kind.SIGNED not in ROUTES[(r.method, r.path)].kinds
    ]
    missing = [
        f"{r.method} {r.path}" for r in with_body if ROUTES[(r.method, r.path)].owner_body is None
    ]
    assert missing == [], "give these routes an owner_body in tests/authz_support.py"
    before = snapshot(soundhive_services)
    wrong = []
    for route in with_body:
        base = substitute(ROUTES[(route.method, route.path)].owner_body, values)
        names = list(fields) if route.path in OBJECT_PATCHES else ["owner_id", "status", "roles"]
        url = fill(route.path, values)
        for name in names:
            response = api.request(
                route.method, url, json={**base, name: fields[name]}, headers=caller_for(route, w)
            )
            locs = (
                [e["loc"] for e in response.json().get("errors", [])]
                if response.status_code == 422
                else []
            )
            if ["body", name] not in locs:
                wrong.append(f"{route.method} {url} +{name}: {response.status_code} {locs}")
    assert wrong == [], "\n".join(wrong)
    assert changed_tables(before, snapshot(soundhive_services)) == []
    for path in sorted(OBJECT_PATCHES):
        base = substitute(ROUTES[("PATCH", path)].owner_body, values)
        accepted = api.patch(fill(path, values), json=base, headers=w.a.headers)
        assert accepted.status_code == 200, (path, accepted.text)
