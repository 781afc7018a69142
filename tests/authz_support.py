"""The authorization matrix's rule book and world (used by ``tests/test_authz_matrix.py``).

``ROUTES`` classifies every route the app serves. The matrix is generated from the live app's
routes and looks each one up here, so a new route fails the suite until someone decides what
it is: public, the caller's own data, a read or a change of an object somebody owns, an
action on an object the caller can see, moderation, or a signed storage URL.

``build_world`` makes the objects the matrix attacks: user A's public, private, unlisted and
hidden tracks, playlists, comments, notifications and an unfinished upload, and a banned user
C's track, plus what user B legitimately did before A's content went private or hidden (likes,
plays, a playlist, follows), so lists have a reason to show what they must not.
"""

from __future__ import annotations

import enum
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from core.testing.plugin import Api, Services, wait_for
from tests.music_helpers import initiate, ready_track, sql


class Kind(enum.StrEnum):
    PUBLIC = "public"
    """Anyone, signed in or not; no object of an owner in the path."""
    SELF = "self"
    """The caller's own data (no foreign id in the path): 401 without a token."""
    OBJECT_READ = "object-read"
    """Reads an object by id: 404 for private/hidden/banned objects to anyone but the owner."""
    OBJECT_WRITE = "object-write"
    """Changes an object its owner controls: 403/404 for others, and nothing changes."""
    OBJECT_ACT = "object-act"
    """Acts on an object others may see (like, comment, play, fork, follow, report): 404
    when the caller may not see it."""
    ADMIN = "admin"
    """Moderation: 403 for a normal user, 401 without a token."""
    SIGNED = "signed"
    """Local storage: only a signed URL opens it, a token does not."""


@dataclass(frozen=True)
class Rule:
    kind: Kind
    body: dict[str, Any] | None = None
    """The attacker's request body, valid so a 422 never hides the authorization answer;
    ``"$name"`` strings are replaced like path parameters."""
    own: tuple[str, ...] = ()
    """Parameters that take the attacker's own object (e.g. B's playlist to add A's track to)."""


@dataclass(frozen=True)
class Route:
    rules: tuple[Rule, ...]
    owner_body: dict[str, Any] | None = None
    """A valid body from the owner (A, or the moderator on /admin): the base of the mass
    assignment, limit and body-size checks."""
    anonymous: bool = False
    """Anonymous callers are served (public reads, anonymous plays)."""

    @property
    def kinds(self) -> set[Kind]:
        return {rule.kind for rule in self.rules}


def _r(kind: Kind, **kw: Any) -> tuple[Rule, ...]:
    return (Rule(kind, **kw),)


P, S, R, W, A, ADM = (
    Kind.PUBLIC, Kind.SELF, Kind.OBJECT_READ, Kind.OBJECT_WRITE, Kind.OBJECT_ACT, Kind.ADMIN,
)  # fmt: skip
V1 = "/api/v1"
REPORT = {"reason": "spam"}
NOTE = {"note": "matrix"}
ROUTES: dict[tuple[str, str], Route] = {
    # operations, documentation, the dev issuer's keys
    ("GET", "/healthz"): Route(_r(P), anonymous=True),
    ("GET", "/readyz"): Route(_r(P), anonymous=True),
    ("GET", "/metrics"): Route(_r(P), anonymous=True),
    ("GET", "/openapi.json"): Route(_r(P), anonymous=True),
    ("GET", "/docs"): Route(_r(P), anonymous=True),
    ("GET", "/docs/oauth2-redirect"): Route(_r(P), anonymous=True),
    ("GET", "/redoc"): Route(_r(P), anonymous=True),
    ("GET", "/.well-known/jwks.json"): Route(_r(P), anonymous=True),
    ("PUT", "/storage/{key}"): Route(_r(Kind.SIGNED), anonymous=True),
    ("GET", "/storage/{key}"): Route(_r(Kind.SIGNED), anonymous=True),
    ("HEAD", "/storage/{key}"): Route(_r(Kind.SIGNED), anonymous=True),
    # the example third-party skill (examples/hello-skill)
    ("POST", f"{V1}/hello/greetings"): Route(_r(S), owner_body={"name": "world"}),
    ("GET", f"{V1}/hello/greetings/{{name}}"): Route(_r(P), anonymous=True),
    # user-profile, user-follow-system
    ("GET", f"{V1}/users/me"): Route(_r(S)),
    ("PATCH", f"{V1}/users/me"): Route(_r(S), owner_body={"display_name": "Alice A"}),
    ("DELETE", f"{V1}/users/me"): Route(_r(S)),
    ("GET", f"{V1}/users/by-handle/{{handle}}"): Route(_r(R), anonymous=True),
    ("GET", f"{V1}/users/{{user_id}}"): Route(_r(R), anonymous=True),
    ("POST", f"{V1}/users/{{user_id}}/follow"): Route(_r(A)),
    ("DELETE", f"{V1}/users/{{user_id}}/follow"): Route(_r(A)),
    ("GET", f"{V1}/users/{{user_id}}/follow"): Route(_r(R)),
    ("GET", f"{V1}/users/{{user_id}}/followers"): Route(_r(R), anonymous=True),
    ("GET", f"{V1}/users/{{user_id}}/following"): Route(_r(R), anonymous=True),
    # music-streaming-basic, music-upload
    ("GET", f"{V1}/tracks/{{track_id}}"): Route(_r(R), anonymous=True),
    ("GET", f"{V1}/tracks/{{track_id}}/stream"): Route(_r(R), anonymous=True),
    ("GET", f"{V1}/tracks/{{track_id}}/events"): Route(_r(R), anonymous=True),
    ("PATCH", f"{V1}/tracks/{{track_id}}"): Route(
        _r(W, body={"title": "pwned", "visibility": "public"}), owner_body={"title": "Renamed"}
    ),
    ("DELETE", f"{V1}/tracks/{{track_id}}"): Route(_r(W)),
    ("GET", f"{V1}/users/{{user_id}}/tracks"): Route(_r(R), anonymous=True),
    ("POST", f"{V1}/tracks/upload/initiate"): Route(
        _r(S), owner_body={"filename": "a.mp3", "content_type": "audio/mpeg", "file_size": 1000}
    ),
    ("POST", f"{V1}/tracks/upload/finalize"): Route(
        _r(A, body={"upload_id": "$upload_id", "title": "stolen"}),
        owner_body={"upload_id": "$upload_id", "title": "Mine"},
    ),
    # interaction-like-comment
    ("POST", f"{V1}/tracks/{{track_id}}/like"): Route(_r(A)),
    ("DELETE", f"{V1}/tracks/{{track_id}}/like"): Route(_r(A)),
    ("GET", f"{V1}/tracks/{{track_id}}/like"): Route(_r(R)),
    ("GET", f"{V1}/tracks/{{track_id}}/likes"): Route(_r(R), anonymous=True),
    ("GET", f"{V1}/users/me/likes"): Route(_r(S)),
    ("GET", f"{V1}/tracks/{{track_id}}/comments"): Route(_r(R), anonymous=True),
    ("POST", f"{V1}/tracks/{{track_id}}/comments"): Route(
        _r(A, body={"body": "hello"}), owner_body={"body": "hello"}
    ),
    ("GET", f"{V1}/comments/{{comment_id}}"): Route(_r(R), anonymous=True),
    ("PATCH", f"{V1}/comments/{{comment_id}}"): Route(
        _r(W, body={"body": "pwned"}), owner_body={"body": "edited"}
    ),
    ("DELETE", f"{V1}/comments/{{comment_id}}"): Route(_r(W)),
    # play-history-tracking (anonymous plays are allowed and stored in nobody's history)
    ("POST", f"{V1}/tracks/{{track_id}}/play"): Route(
        _r(A), owner_body={"played_ms": 1000}, anonymous=True
    ),
    ("GET", f"{V1}/users/me/history"): Route(_r(S)),
    # playlist-management
    ("POST", f"{V1}/playlists"): Route(_r(S), owner_body={"title": "New list"}),
    ("GET", f"{V1}/playlists/{{playlist_id}}"): Route(_r(R), anonymous=True),
    ("PATCH", f"{V1}/playlists/{{playlist_id}}"): Route(
        _r(W, body={"title": "pwned", "visibility": "public"}), owner_body={"title": "Mine"}
    ),
    ("DELETE", f"{V1}/playlists/{{playlist_id}}"): Route(_r(W)),
    ("GET", f"{V1}/users/{{user_id}}/playlists"): Route(_r(R), anonymous=True),
    ("POST", f"{V1}/playlists/{{playlist_id}}/tracks"): Route(
        (
            Rule(W, body={"track_id": "$t_unl"}),  # into A's playlist: a track B may see
            Rule(A, body={"track_id": "$track_id"}, own=("playlist_id",)),  # A's hidden ones
        ),
        owner_body={"track_id": "$t_unl"},
    ),
    ("DELETE", f"{V1}/playlists/{{playlist_id}}/tracks/{{track_id}}"): Route(_r(W)),
    ("PATCH", f"{V1}/playlists/{{playlist_id}}/tracks/{{track_id}}"): Route(
        _r(W, body={"position": 1}), owner_body={"position": 1}
    ),
    ("POST", f"{V1}/playlists/{{playlist_id}}/fork"): Route(_r(A), owner_body={"title": "Copy"}),
    # activity-feed, notification-system, recommendation-basic
    ("GET", f"{V1}/feed"): Route(_r(S)),
    ("GET", f"{V1}/notifications"): Route(_r(S)),
    ("GET", f"{V1}/notifications/unread-count"): Route(_r(S)),
    ("POST", f"{V1}/notifications/read-all"): Route(_r(S)),
    ("POST", f"{V1}/notifications/{{notification_id}}/read"): Route(_r(W)),
    ("GET", f"{V1}/notifications/stream"): Route(_r(S)),
    ("GET", f"{V1}/recommendations"): Route(_r(S)),
    ("GET", f"{V1}/tracks/{{track_id}}/similar"): Route(_r(R), anonymous=True),
    # tag-search-discovery
    ("GET", f"{V1}/search/tracks"): Route(_r(P), anonymous=True),
    ("GET", f"{V1}/tags"): Route(_r(P), anonymous=True),
    ("GET", f"{V1}/tags/{{name}}/tracks"): Route(_r(P), anonymous=True),
    ("GET", f"{V1}/moods"): Route(_r(P), anonymous=True),
    ("GET", f"{V1}/discover/trending"): Route(_r(P), anonymous=True),
    ("GET", f"{V1}/discover/latest"): Route(_r(P), anonymous=True),
    # admin-moderation: reporting is for every account, the rest is /admin
    ("POST", f"{V1}/reports"): Route(
        tuple(
            Rule(A, body={"target_type": kind, "target_id": f"${kind}_id", **REPORT})
            for kind in ("track", "comment", "playlist", "user")
        ),
        owner_body={"target_type": "user", "target_id": "$b_id", **REPORT},
    ),
    ("GET", f"{V1}/admin/reports"): Route(_r(ADM)),
    ("GET", f"{V1}/admin/reports/{{report_id}}"): Route(_r(ADM)),
    ("POST", f"{V1}/admin/reports/{{report_id}}/resolve"): Route(
        _r(ADM, body={"action": "dismiss"}), owner_body={"action": "dismiss"}
    ),
    ("POST", f"{V1}/admin/tracks/{{track_id}}/hide"): Route(_r(ADM, body=NOTE), owner_body=NOTE),
    ("POST", f"{V1}/admin/tracks/{{track_id}}/unhide"): Route(_r(ADM, body=NOTE), owner_body=NOTE),
    ("DELETE", f"{V1}/admin/tracks/{{track_id}}"): Route(_r(ADM)),
    ("POST", f"{V1}/admin/comments/{{comment_id}}/hide"): Route(
        _r(ADM, body=NOTE), owner_body=NOTE
    ),
    ("POST", f"{V1}/admin/comments/{{comment_id}}/unhide"): Route(
        _r(ADM, body=NOTE), owner_body=NOTE
    ),
    ("DELETE", f"{V1}/admin/comments/{{comment_id}}"): Route(_r(ADM)),
    ("DELETE", f"{V1}/admin/playlists/{{playlist_id}}"): Route(_r(ADM)),
    ("POST", f"{V1}/admin/users/{{user_id}}/ban"): Route(_r(ADM, body=NOTE), owner_body=NOTE),
    ("POST", f"{V1}/admin/users/{{user_id}}/unban"): Route(_r(ADM, body=NOTE), owner_body=NOTE),
    ("GET", f"{V1}/admin/audit-log"): Route(_r(ADM)),
}


@dataclass(frozen=True)
class AppRoute:
    """One method of one route of the running app, with what the matrix needs to call it."""

    method: str
    path: str
    """The path template without converters (``/tags/{name}/tracks``)."""
    path_params: tuple[str, ...]
    query_params: tuple[str, ...]
    has_body: bool
    streams: bool
    """A server-sent event stream (stays open when it succeeds)."""


def app_routes(app: FastAPI) -> list[AppRoute]:
    """Every (method, path) the app serves, from its routes (skills' routers included).

    ``HEAD`` that Starlette adds to plain ``GET`` routes is left out; an explicit ``HEAD``
    route (storage) is kept."""
    found: list[AppRoute] = []
    for route in iter_route_contexts(app.routes):
        methods = set(route.methods or ())
        if "GET" in methods and not hasattr(route, "dependant"):
            methods.discard("HEAD")
        dependant = getattr(route, "dependant", None)
        path_params = tuple(p.name for p in dependant.path_params) if dependant else ()
        query_params = tuple(p.alias for p in _all_query_params(dependant)) if dependant else ()
        has_body = bool(dependant and _has_body(dependant))
        response_class = getattr(route, "response_class", None)
        streams = "EventSource" in getattr(response_class, "__name__", "")
        found += [
            AppRoute(method, route.path_format, path_params, query_params, has_body, streams)
            for method in sorted(methods)
        ]
    return found


def _all_query_params(dependant: Any) -> Iterator[Any]:
    yield from dependant.query_params
    for sub in dependant.dependencies:
        yield from _all_query_params(sub)


def _has_body(dependant: Any) -> bool:
    return bool(dependant.body_params) or any(_has_body(d) for d in dependant.dependencies)


# -- the world --------------------------------------------------------------------------------
@dataclass
class User:
    sub: str
    id: str
    handle: str
    headers: dict[str, str]


@dataclass
class World:
    a: User
    b: User
    c: User
    mod: User
    ids: dict[str, str] = field(default_factory=dict)
    """Named objects: tracks t_pub, t_priv, t_unl, t_hide, t_later (private after B used it),
    t_c (banned C's); playlists pl_pub, pl_priv, pl_b (B's); comments c_pub, c_priv,
    c_hidden, c_b (B's on t_later), c_reply (A's answer to it), c_by_c; A's notification n_a,
    upload_id, report_id."""

    @property
    def secrets(self) -> dict[str, str]:
        """What B and anonymous callers must never see in any response."""
        names = ("t_priv", "t_hide", "t_later", "t_c", "pl_priv", "c_priv", "c_hidden", "c_b")
        names += ("c_reply", "c_by_c")
        found = {name: self.ids[name] for name in names}
        found |= {"n_a": self.ids["n_a"], "upload_id": self.ids["upload_id"], "c": self.c.id}
        return found

    @property
    def never_listed(self) -> dict[str, str]:
        """Open by link, never in a list: A's unlisted track (B did nothing with it)."""
        return {"t_unl": self.ids["t_unl"]}

    def visible(self) -> dict[str, str]:
        """Path values of A's objects B can see (or A's own, for the owner's calls)."""
        return {
            "track_id": self.ids["t_pub"],
            "comment_id": self.ids["c_pub"],
            "playlist_id": self.ids["pl_pub"],
            "notification_id": self.ids["n_a"],
            "user_id": self.a.id,
            "handle": self.a.handle,
            "report_id": self.ids["report_id"],
            "name": "matrixtag",
            "key": "uploads/x/y",
        }

    def invisible(self) -> dict[str, list[str]]:
        """Per parameter, A's (and banned C's) objects B and anonymous callers cannot see."""
        tracks = [self.ids[n] for n in ("t_priv", "t_hide", "t_later", "t_c")]
        return {
            "track_id": tracks,
            "comment_id": [self.ids[n] for n in ("c_priv", "c_hidden", "c_reply", "c_by_c")],
            "playlist_id": [self.ids["pl_priv"]],
            "user_id": [self.c.id],
            "handle": [self.c.handle],
            "notification_id": [self.ids["n_a"]],
            "upload_id": [self.ids["upload_id"]],
        }

    def own_of_b(self) -> dict[str, str]:
        return {"playlist_id": self.ids["pl_b"], "user_id": self.b.id}

    def values(self) -> dict[str, str]:
        """``$name`` replacements in bodies: named objects plus ``$a_id`` etc."""
        return {**self.ids, "a_id": self.a.id, "b_id": self.b.id, "c_id": self.c.id}


def fill(path: str, values: dict[str, str]) -> str:
    return path.format(**{name: values[name] for name in _names(path)})


def _names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def substitute(body: Any, values: dict[str, str]) -> Any:
    """Replace ``"$name"`` strings in a body template."""
    if isinstance(body, dict):
        return {key: substitute(value, values) for key, value in body.items()}
    if isinstance(body, list):
        return [substitute(value, values) for value in body]
    if isinstance(body, str) and body.startswith("$"):
        return values[body[1:]]
    return body


def _user(api: Api, sub: str, *roles: str) -> User:
    headers = api.auth(sub, *roles)
    me = api.get("/api/v1/users/me", headers=headers)
    assert me.status_code == 200, me.text
    return User(sub, me.json()["id"], me.json()["handle"], headers)


def _call(api: Api, method: str, path: str, user: User, body: Any = None) -> dict[str, Any]:
    """A world-building request that must succeed."""
    response = api.request(method, "/api/v1" + path, json=body, headers=user.headers)
    assert response.status_code in (200, 201), (method, path, response.status_code, response.text)
    return response.json() if response.content else {}


def build_world(api: Api, services: Services) -> World:
    """A's, B's and C's objects and history (see the module docstring); the privacy changes
    (private, hidden, banned) happen last, after B's likes, plays and list reads."""
    a, b, c = (_user(api, f"authz-{name}") for name in ("alice", "bob", "carol"))
    mod = _user(api, "authz-mod", "moderator")
    world = World(a, b, c, mod)
    ids = world.ids
    for followed in (a, c):
        _call(api, "POST", f"/users/{followed.id}/follow", b)
    for owner, name, visibility in (
        (a, "t_pub", "public"),
        (a, "t_priv", "private"),
        (a, "t_unl", "unlisted"),
        (a, "t_hide", "public"),
        (a, "t_later", "public"),
        (c, "t_c", "public"),
    ):
        fields = {"tags": ["matrixtag", "lofi"], "mood": "calm", "visibility": visibility}
        made = ready_track(api, services, owner.headers, title=f"Matrix {name}", **fields)
        ids[name] = made["id"]
    for name in ("t_pub", "t_hide", "t_later", "t_c"):
        _call(api, "POST", f"/tracks/{ids[name]}/like", b)
        _call(api, "POST", f"/tracks/{ids[name]}/play", b, {})
    ids["c_b"] = _call(api, "POST", f"/tracks/{ids['t_later']}/comments", b, {"body": "nice"})["id"]
    reply = {"body": "thanks", "parent_id": ids["c_b"]}
    ids["c_reply"] = _call(api, "POST", f"/tracks/{ids['t_later']}/comments", a, reply)["id"]
    # C's traces, hidden with C once banned: a like, a comment, a follow of B
    _call(api, "POST", f"/tracks/{ids['t_pub']}/like", c)
    ids["c_by_c"] = _call(api, "POST", f"/tracks/{ids['t_pub']}/comments", c, {"body": "hey"})["id"]
    _call(api, "POST", f"/users/{b.id}/follow", c)
    for name, owner, visibility in (("pl_b", b, "public"), ("pl_pub", a, "public"),
                                    ("pl_priv", a, "private")):  # fmt: skip
        body = {"title": name, "visibility": visibility}
        ids[name] = _call(api, "POST", "/playlists", owner, body)["id"]
    for playlist, owner, names in (
        ("pl_b", b, ("t_pub", "t_hide", "t_later", "t_c")),
        ("pl_pub", a, ("t_pub", "t_priv", "t_hide")),
        ("pl_priv", a, ("t_pub",)),
    ):
        for name in names:
            entry = {"track_id": ids[name]}
            _call(api, "POST", f"/playlists/{ids[playlist]}/tracks", owner, entry)
    for name, track in (("c_pub", "t_pub"), ("c_priv", "t_priv"), ("c_hidden", "t_pub")):
        body = {"body": f"comment {name}"}
        ids[name] = _call(api, "POST", f"/tracks/{ids[track]}/comments", a, body)["id"]
    ticket = initiate(api, a.headers, b"x" * 1000, "audio/mpeg")
    assert ticket.status_code == 201, ticket.text
    ids["upload_id"] = ticket.json()["upload_id"]
    report = {"target_type": "user", "target_id": b.id, "reason": "matrix"}
    ids["report_id"] = _call(api, "POST", "/reports", a, report)["id"]
    # B's notifications (A's reply, C's follow) exist before the changes hide their subjects
    wait_for(lambda: len(_call(api, "GET", "/notifications", b)["items"]) >= 2, timeout=30)
    # B reads its lists before the changes: what they cache must not survive the changes
    for path in ("/users/me/likes", "/users/me/history", "/feed", "/notifications",
                 "/recommendations", "/discover/latest", "/discover/trending",
                 f"/playlists/{ids['pl_b']}", f"/users/{a.id}/tracks",
                 f"/tracks/{ids['t_pub']}/similar"):  # fmt: skip
        api.get("/api/v1" + path, headers=b.headers)
    _call(api, "POST", f"/admin/tracks/{ids['t_hide']}/hide", mod, NOTE)
    _call(api, "POST", f"/admin/comments/{ids['c_hidden']}/hide", mod, NOTE)
    _call(api, "PATCH", f"/tracks/{ids['t_later']}", a, {"visibility": "private"})
    _call(api, "POST", f"/admin/users/{c.id}/ban", mod, NOTE)
    notes = wait_for(
        lambda: api.get("/api/v1/notifications", headers=a.headers).json()["items"], timeout=30
    )
    ids["n_a"] = notes[0]["id"]
    return world


# -- a worker for the world's background work, and a way to know it is done ------------------
def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``soundhive worker`` (like the ``real_worker`` fixture, for a whole module)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "worker", "--processes", "1", "--threads", "2"],
        env={**os.environ, **env},
    )
    time.sleep(1.5)
    assert proc.poll() is None, "worker exited at start-up"
    return proc


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


TABLES_THAT_MAY_MOVE = {"core_outbox"}


def snapshot(services: Services) -> dict[str, list[str]]:
    """Every row of every table (but the outbox): to prove a refused request changed nothing."""
    from core.testing.services import existing_tables

    tables = sorted(set(existing_tables(services.database_url)) - TABLES_THAT_MAY_MOVE)
    return {table: sorted(map(repr, sql(services, f'SELECT * FROM "{table}"'))) for table in tables}


def wait_until_idle(services: Services, timeout: float = 60) -> None:
    """Background work has settled: nothing left in the outbox and no row changed for 2 s."""
    deadline = time.time() + timeout
    previous, stable_since = None, time.time()
    while time.time() < deadline:
        pending = sql(services, "SELECT count(*) FROM core_outbox WHERE relayed_at IS NULL")
        current = snapshot(services)
        if current != previous or pending[0][0]:
            previous, stable_since = current, time.time()
        elif time.time() - stable_since >= 2:
            return
        time.sleep(0.25)
    raise AssertionError("background work did not settle")


def new_id() -> str:
    return str(uuid.uuid4())
