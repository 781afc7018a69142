"""admin-moderation over real HTTP, on the real PostgreSQL and Redis of the test session.

Tracks come from the real upload API (``ready_track``); comments, likes and playlists from
their skills' endpoints. Every effect is checked the way a client sees it: a hidden track is
404 to others, gone from lists, playlists and likes, and still there for its owner and
moderators.
"""

from __future__ import annotations

import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psycopg
import pytest

from core.testing.services import plain_url
from skills.admin_moderation.router import admin_router
from tests.music_helpers import ready_track, sql

V1 = "/api/v1"
PROBLEM = "application/problem+json"
REPORT_FIELDS = {
    "id",
    "reporter_id",
    "target_type",
    "target_id",
    "reason",
    "status",
    "action",
    "note",
    "resolved_by",
    "resolved_at",
    "created_at",
}
ADMIN_ROUTES = sorted(
    (method, V1 + route.path)  # type: ignore[attr-defined]
    for route in admin_router.routes
    for method in route.methods  # type: ignore[attr-defined]
)


# -- helpers --------------------------------------------------------------------------------
def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["code"] == code and body["status"] == status and body["detail"]
    return body


def user(api: Any, sub: str, *roles: str) -> tuple[dict[str, str], str]:
    """Headers and profile id of a (provisioned) user."""
    headers = api.auth(sub, *roles)
    r = api.get(f"{V1}/users/me", headers=headers)
    assert r.status_code == 200, r.text
    return headers, str(r.json()["id"])


def report(
    api: Any, headers: dict[str, str], target_type: str, target_id: str, reason: str = "spam"
) -> httpx.Response:
    body = {"target_type": target_type, "target_id": target_id, "reason": reason}
    return api.post(f"{V1}/reports", json=body, headers=headers)


def filed(api: Any, headers: dict[str, str], target_type: str, target_id: str) -> dict[str, Any]:
    r = report(api, headers, target_type, target_id)
    assert r.status_code == 201, r.text
    return dict(r.json())


def resolve(
    api: Any, headers: dict[str, str], report_id: str, action: str, note: str | None = None
) -> httpx.Response:
    return api.post(
        f"{V1}/admin/reports/{report_id}/resolve",
        json={"action": action, "note": note},
        headers=headers,
    )


def resolved(api: Any, headers: dict[str, str], report_id: str, action: str) -> dict[str, Any]:
    r = resolve(api, headers, report_id, action, note=f"{action} it")
    assert r.status_code == 200, r.text
    return dict(r.json())


def comment(api: Any, track_id: str, headers: dict[str, str], body: str = "nice") -> str:
    r = api.post(f"{V1}/tracks/{track_id}/comments", json={"body": body}, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def comment_ids(api: Any, track_id: str, headers: dict[str, str] | None = None) -> set[str]:
    r = api.get(f"{V1}/tracks/{track_id}/comments", headers=headers or {})
    assert r.status_code == 200, r.text
    return {c["id"] for c in r.json()["items"]}


def playlist_with(api: Any, headers: dict[str, str], *track_ids: str) -> str:
    r = api.post(f"{V1}/playlists", json={"title": "Mix"}, headers=headers)
    assert r.status_code == 201, r.text
    pid = str(r.json()["id"])
    for track_id in track_ids:
        added = api.post(
            f"{V1}/playlists/{pid}/tracks", json={"track_id": track_id}, headers=headers
        )
        assert added.status_code == 201, added.text
    return pid


def playlist_tracks(api: Any, pid: str, headers: dict[str, str] | None = None) -> set[str]:
    r = api.get(f"{V1}/playlists/{pid}", headers=headers or {})
    assert r.status_code == 200, r.text
    return {entry["track"]["id"] for entry in r.json()["tracks"]}


def owner_track_ids(api: Any, owner_id: str, headers: dict[str, str] | None = None) -> set[str]:
    r = api.get(f"{V1}/users/{owner_id}/tracks", headers=headers or {})
    assert r.status_code == 200, r.text
    return {t["id"] for t in r.json()["items"]}


def liked_ids(api: Any, headers: dict[str, str]) -> set[str]:
    r = api.get(f"{V1}/users/me/likes", headers=headers)
    assert r.status_code == 200, r.text
    return {t["id"] for t in r.json()["items"]}


def audit(api: Any, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    r = api.get(f"{V1}/admin/audit-log", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def events(services: Any, event_type: str) -> list[dict[str, Any]]:
    rows = sql(services, "SELECT payload FROM core_outbox WHERE type = %s", event_type)
    return [row[0] for row in rows]


# -- reporting ------------------------------------------------------------------------------
def test_reports_are_filed_once_per_reporter_and_listed_for_moderators(
    api: Any, soundhive_services: Any
) -> None:
    alice, _ = user(api, "alice")
    bob, bob_id = user(api, "bob")
    carol, _ = user(api, "carol")
    mod, _ = user(api, "mod", "moderator")
    track = ready_track(api, soundhive_services, alice, title="Loud")

    first = report(api, bob, "track", track["id"], reason="  Stolen\r\nbeat  ")
    assert first.status_code == 201, first.text
    body = first.json()
    assert set(body) == REPORT_FIELDS
    assert body["reporter_id"] == bob_id and body["target_id"] == track["id"]
    assert (body["status"], body["action"], body["reason"]) == ("open", None, "Stolen\nbeat")
    # a repeat (even with another reason) answers 200 with the existing open report
    again = report(api, bob, "track", track["id"], reason="again")
    assert again.status_code == 200 and again.json() == body
    other = filed(api, carol, "track", track["id"])
    assert other["id"] != body["id"]
    assert sql(soundhive_services, "SELECT count(*) FROM moderation_reports") == [(2,)]
    assert len(events(soundhive_services, "report.created")) == 2

    # the queue: filters, both orders, keyset pages bound to their order
    page = api.get(f"{V1}/admin/reports", params={"status": "open"}, headers=mod).json()
    assert [r["id"] for r in page["items"]] == [other["id"], body["id"]]
    oldest = api.get(
        f"{V1}/admin/reports", params={"sort": "oldest", "limit": 1}, headers=mod
    ).json()
    assert [r["id"] for r in oldest["items"]] == [body["id"]] and oldest["next_cursor"]
    rest = api.get(
        f"{V1}/admin/reports",
        params={"sort": "oldest", "limit": 1, "cursor": oldest["next_cursor"]},
        headers=mod,
    ).json()
    assert [r["id"] for r in rest["items"]] == [other["id"]] and rest["next_cursor"] is None
    wrong_order = api.get(
        f"{V1}/admin/reports", params={"cursor": oldest["next_cursor"]}, headers=mod
    )
    problem(wrong_order, 422, "INVALID_CURSOR")
    none = api.get(f"{V1}/admin/reports", params={"status": "resolved"}, headers=mod).json()
    assert none == {"items": [], "next_cursor": None}
    by_type = api.get(f"{V1}/admin/reports", params={"target_type": "user"}, headers=mod).json()
    assert by_type["items"] == []
    one = api.get(f"{V1}/admin/reports/{body['id']}", headers=mod)
    assert one.status_code == 200 and one.json() == body
    problem(api.get(f"{V1}/admin/reports/{uuid.uuid4()}", headers=mod), 404, "REPORT_NOT_FOUND")
    bad_status = api.get(f"{V1}/admin/reports", params={"status": "closed"}, headers=mod)
    problem(bad_status, 422, "VALIDATION_FAILED")


def test_report_validation_and_visibility(api: Any, soundhive_services: Any) -> None:
    alice, alice_id = user(api, "alice")
    mod, _ = user(api, "mod", "moderator")
    public = ready_track(api, soundhive_services, alice, title="Public")
    private = ready_track(api, soundhive_services, alice, title="Secret", visibility="private")
    hidden_comment = comment(api, public["id"], alice, body="hide me")
    assert api.post(f"{V1}/admin/comments/{hidden_comment}/hide", headers=mod).status_code == 200
    r = api.post(f"{V1}/playlists", json={"title": "Mine", "visibility": "private"}, headers=alice)
    private_playlist = r.json()["id"]

    bob, _ = user(api, "bob")  # every attempt counts against the budget: 10 per reporter
    err = problem(report(api, bob, "album", public["id"]), 422, "VALIDATION_FAILED")
    assert err["errors"][0]["loc"] == ["body", "target_type"]
    for body in (
        {"target_type": "track", "target_id": public["id"], "reason": "   "},
        {"target_type": "track", "target_id": public["id"], "reason": "x" * 1001},
        {"target_type": "track", "target_id": public["id"], "reason": "a\x00b"},
        {"target_type": "track", "target_id": "not-a-uuid", "reason": "spam"},
        {"target_type": "track", "target_id": public["id"], "reason": "x", "status": "resolved"},
        {"target_type": "track", "target_id": public["id"]},
    ):
        problem(api.post(f"{V1}/reports", json=body, headers=bob), 422, "VALIDATION_FAILED")
    problem(report(api, {}, "track", public["id"]), 401, "UNAUTHORIZED")
    problem(report(api, alice, "user", alice_id), 422, "CANNOT_REPORT_SELF")
    # unknown targets, and targets the reporter may not see, are 404 with the target's code
    carol, _ = user(api, "carol")
    missing = str(uuid.uuid4())
    for target_type in ("track", "comment", "user", "playlist"):
        problem(report(api, carol, target_type, missing), 404, f"{target_type.upper()}_NOT_FOUND")
    problem(report(api, carol, "track", private["id"]), 404, "TRACK_NOT_FOUND")
    problem(report(api, carol, "comment", hidden_comment), 404, "COMMENT_NOT_FOUND")
    problem(report(api, carol, "playlist", private_playlist), 404, "PLAYLIST_NOT_FOUND")
    assert sql(soundhive_services, "SELECT count(*) FROM moderation_reports") == [(0,)]
    # what the reporter can see may be reported, of every kind
    dave, _ = user(api, "dave")
    for target_type, target_id in (
        ("track", public["id"]),
        ("comment", comment(api, public["id"], alice)),
        ("user", alice_id),
        ("playlist", playlist_with(api, alice)),
    ):
        assert filed(api, dave, target_type, target_id)["target_type"] == target_type
    # moderators may report what only they can see (to hand a case to a colleague)
    assert filed(api, mod, "track", private["id"])["reporter_id"]


def test_reports_are_rate_limited_by_a_setting(
    api: Any, soundhive_services: Any, make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.app import create_app
    from core.kernel import Kernel
    from core.plugins import SkillError
    from core.testing.live import LiveServer
    from core.testing.plugin import Api

    assert Kernel(make_settings()).skill_settings("admin-moderation").report_rate == "10/hour"
    monkeypatch.setenv("SOUNDHIVE_MODERATION_REPORT_RATE", "often")
    with pytest.raises(SkillError, match="REPORT_RATE"):
        Kernel(make_settings())
    monkeypatch.setenv("SOUNDHIVE_MODERATION_REPORT_RATE", "2/hour")
    alice, alice_id = user(api, "alice")
    bob, _ = user(api, "bob")
    track = ready_track(api, soundhive_services, alice)
    with LiveServer(create_app(make_settings())) as small, Api(small.url, api.jwks) as client:
        assert report(client, bob, "track", track["id"]).status_code == 201
        assert report(client, bob, "track", track["id"]).status_code == 200  # repeats count
        limited = report(client, bob, "user", alice_id)
        assert "at most 2" in problem(limited, 429, "RATE_LIMITED")["detail"]
        assert "2" in limited.headers.get_list("RateLimit-Limit")  # (the global one follows)
        assert int(limited.headers["Retry-After"]) > 0
        # invalid attempts count too (no probing), and a fresh token buys no fresh budget
        fresh = api.auth("bob", email="bob@example.com")
        assert fresh != bob
        problem(client.post(f"{V1}/reports", json={}, headers=fresh), 429, "RATE_LIMITED")
        # the budget is per account
        assert report(client, alice, "track", track["id"]).status_code == 201
    assert sql(soundhive_services, "SELECT count(*) FROM moderation_reports") == [(2,)]


def test_concurrent_repeats_file_one_report(api: Any, soundhive_services: Any) -> None:
    alice, _ = user(api, "alice")
    bob, _ = user(api, "bob")
    track = ready_track(api, soundhive_services, alice)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: report(api, bob, "track", track["id"]), range(8)))
    assert sorted(r.status_code for r in answers) == [200] * 7 + [201]
    assert len({r.json()["id"] for r in answers}) == 1
    assert sql(soundhive_services, "SELECT count(*) FROM moderation_reports") == [(1,)]


# -- resolving ------------------------------------------------------------------------------
def test_hiding_a_track_hides_it_everywhere_but_for_owner_and_moderators(
    api: Any, soundhive_services: Any
) -> None:
    alice, alice_id = user(api, "alice")
    bob, _ = user(api, "bob")
    carol, _ = user(api, "carol")
    mod, mod_id = user(api, "mod", "moderator")
    boss, _ = user(api, "boss", "admin")
    track = ready_track(api, soundhive_services, alice, title="Copied")
    keep = ready_track(api, soundhive_services, alice, title="Original")
    tid = track["id"]
    pid = playlist_with(api, carol, tid, keep["id"])
    assert api.post(f"{V1}/tracks/{tid}/like", headers=carol).status_code == 200
    assert api.get(f"{V1}/tracks/{tid}").status_code == 200  # cached now
    bob_report = filed(api, bob, "track", tid)
    carol_report = filed(api, carol, "track", tid)

    done = resolved(api, mod, bob_report["id"], "hide")
    rep = done["report"]
    assert (rep["status"], rep["action"], rep["note"]) == ("resolved", "hide", "hide it")
    assert rep["resolved_by"] == mod_id and rep["resolved_at"]
    entry = done["audit_entry"]
    assert (entry["action"], entry["target_type"], entry["target_id"]) == (
        "track.hide",
        "track",
        tid,
    )
    assert (entry["actor_id"], entry["actor_sub"], entry["note"]) == (mod_id, "mod", "hide it")
    assert entry["details"]["report_id"] == bob_report["id"]
    assert set(entry["details"]["closed_report_ids"]) == {bob_report["id"], carol_report["id"]}
    assert entry["details"]["owner_id"] == alice_id and entry["details"]["changed"] is True
    # every open report on the track was settled with it
    other = api.get(f"{V1}/admin/reports/{carol_report['id']}", headers=mod).json()
    assert (other["status"], other["action"], other["resolved_by"]) == ("resolved", "hide", mod_id)
    problem(resolve(api, mod, bob_report["id"], "dismiss"), 409, "REPORT_NOT_OPEN")

    # gone at once for everyone else ...
    for headers in ({}, bob, carol):
        problem(api.get(f"{V1}/tracks/{tid}", headers=headers), 404, "TRACK_NOT_FOUND")
    assert owner_track_ids(api, alice_id, carol) == {keep["id"]}
    assert owner_track_ids(api, alice_id) == {keep["id"]}
    assert playlist_tracks(api, pid, carol) == {keep["id"]}
    assert tid not in liked_ids(api, carol)
    problem(report(api, bob, "track", tid), 404, "TRACK_NOT_FOUND")
    # ... but not for its owner and moderators
    for headers in (alice, mod, boss):
        assert api.get(f"{V1}/tracks/{tid}", headers=headers).status_code == 200
    assert tid in owner_track_ids(api, alice_id, alice)
    assert events(soundhive_services, "track.hidden") == [{"track_id": tid, "owner_id": alice_id}]
    pending = "SELECT count(*) FROM core_outbox WHERE relayed_at IS NULL"
    assert sql(soundhive_services, pending) == [(0,)]  # relayed right after the commit

    unhide = api.post(f"{V1}/admin/tracks/{tid}/unhide", json={"note": "appeal ok"}, headers=boss)
    assert unhide.status_code == 200, unhide.text
    assert unhide.json()["action"] == "track.unhide" and unhide.json()["note"] == "appeal ok"
    assert unhide.json()["details"]["closed_report_ids"] == []
    assert api.get(f"{V1}/tracks/{tid}", headers=carol).status_code == 200
    assert tid in owner_track_ids(api, alice_id) and tid in playlist_tracks(api, pid, carol)
    assert tid in liked_ids(api, carol)
    assert len(events(soundhive_services, "track.unhidden")) == 1
    # unhiding does not reopen the settled reports
    open_now = api.get(f"{V1}/admin/reports", params={"status": "open"}, headers=mod).json()
    assert open_now["items"] == []


def test_a_hidden_track_leaves_discovery_and_feeds_at_once(
    api: Any, soundhive_services: Any
) -> None:
    """The lists other skills own (those installed and enabled in this app): latest, tag,
    search, feed — all read right before hiding, so any cache they keep is warm."""
    spec_paths = set(api.get("/openapi.json").json()["paths"])
    alice, alice_id = user(api, "alice")
    fan, _ = user(api, "fan")
    mod, _ = user(api, "mod", "moderator")
    if f"{V1}/users/{{user_id}}/follow" in spec_paths:
        assert api.post(f"{V1}/users/{alice_id}/follow", headers=fan).status_code == 200
    track = ready_track(api, soundhive_services, alice, title="Zyxwv anthem", tags=["zyxwv"])
    lists = {
        f"{V1}/discover/latest": {},
        f"{V1}/tags/{{name}}/tracks": {"name": "zyxwv"},
        f"{V1}/search/tracks": {"q": "Zyxwv anthem"},
        f"{V1}/feed": {},
    }
    present = {path: params for path, params in lists.items() if path in spec_paths}
    assert set(present) == set(lists), "the built-in discovery and feed skills are enabled"

    def ids(path: str, params: dict[str, str]) -> set[str]:
        url = path.replace("{name}", params.get("name", ""))
        r = api.get(url, params={k: v for k, v in params.items() if k != "name"}, headers=fan)
        assert r.status_code == 200, (path, r.text)
        return {item.get("id") or item.get("track", {}).get("id") for item in r.json()["items"]}

    before = {path for path, params in present.items() if track["id"] in ids(path, params)}
    # search is indexed asynchronously; the other lists read the tables and must show it now
    assert before >= set(lists) - {f"{V1}/search/tracks"}, sorted(before)
    assert api.post(f"{V1}/admin/tracks/{track['id']}/hide", headers=mod).status_code == 200
    still = {path for path, params in present.items() if track["id"] in ids(path, params)}
    assert still == set(), f"listed before hiding: {sorted(before)}"


def test_hiding_a_comment(api: Any, soundhive_services: Any) -> None:
    alice, _ = user(api, "alice")
    bob, _ = user(api, "bob")
    carol, _ = user(api, "carol")
    mod, _ = user(api, "mod", "moderator")
    track = ready_track(api, soundhive_services, alice)
    rude = comment(api, track["id"], carol, body="rude")
    fine = comment(api, track["id"], bob, body="fine")
    rep = filed(api, bob, "comment", rude)

    done = resolved(api, mod, rep["id"], "hide")
    assert done["audit_entry"]["action"] == "comment.hide"
    assert comment_ids(api, track["id"]) == {fine}
    assert comment_ids(api, track["id"], bob) == {fine}
    assert comment_ids(api, track["id"], alice) == {fine}  # the track owner gets no exception
    assert comment_ids(api, track["id"], carol) == {rude, fine}  # its author still sees it
    assert comment_ids(api, track["id"], mod) == {rude, fine}
    problem(api.get(f"{V1}/comments/{rude}", headers=bob), 404, "COMMENT_NOT_FOUND")
    assert events(soundhive_services, "comment.hidden") == [{"comment_id": rude}]

    again = api.post(f"{V1}/admin/comments/{rude}/hide", headers=mod)
    assert again.status_code == 200 and again.json()["details"]["changed"] is False
    unhide = api.post(f"{V1}/admin/comments/{rude}/unhide", headers=mod)
    assert unhide.status_code == 200 and unhide.json()["details"]["changed"] is True
    assert comment_ids(api, track["id"], bob) == {rude, fine}


def test_ban_blocks_writes_and_hides_the_account_until_unbanned(
    api: Any, soundhive_services: Any
) -> None:
    alice, alice_id = user(api, "alice")
    bob, _ = user(api, "bob")
    mod, _ = user(api, "mod", "moderator")
    track = ready_track(api, soundhive_services, alice)
    tid = track["id"]
    words = comment(api, tid, alice, body="mine")
    bobs = ready_track(api, soundhive_services, bob)
    assert api.get(f"{V1}/tracks/{tid}", headers=bob).status_code == 200  # cached now
    rep = filed(api, bob, "user", alice_id)

    done = resolved(api, mod, rep["id"], "ban")
    entry = done["audit_entry"]
    assert (entry["action"], entry["target_id"], entry["details"]["changed"]) == (
        "user.ban",
        alice_id,
        True,
    )
    # every write is 403 ACCOUNT_BANNED; reads still work
    for response in (
        api.patch(f"{V1}/users/me", json={"display_name": "Back"}, headers=alice),
        api.post(f"{V1}/tracks/{bobs['id']}/like", headers=alice),
        api.post(f"{V1}/tracks/{bobs['id']}/comments", json={"body": "hi"}, headers=alice),
        api.post(f"{V1}/playlists", json={"title": "x"}, headers=alice),
        report(api, alice, "track", bobs["id"]),
    ):
        problem(response, 403, "ACCOUNT_BANNED")
    assert api.get(f"{V1}/users/me", headers=alice).json()["is_banned"] is True
    # the profile and content are hidden from others, at once (cached detail included)
    problem(api.get(f"{V1}/users/{alice_id}", headers=bob), 404, "USER_NOT_FOUND")
    problem(api.get(f"{V1}/tracks/{tid}", headers=bob), 404, "TRACK_NOT_FOUND")
    assert comment_ids(api, tid, mod) == {words}
    assert api.get(f"{V1}/users/{alice_id}", headers=mod).status_code == 200
    assert api.get(f"{V1}/tracks/{tid}", headers=alice).status_code == 200
    assert events(soundhive_services, "user.banned") == [{"user_id": alice_id}]

    unban = api.post(f"{V1}/admin/users/{alice_id}/unban", json={"note": "served"}, headers=mod)
    assert unban.status_code == 200 and unban.json()["action"] == "user.unban"
    assert api.get(f"{V1}/users/{alice_id}", headers=bob).status_code == 200
    assert api.get(f"{V1}/tracks/{tid}", headers=bob).status_code == 200
    assert comment_ids(api, tid, bob) == {words}
    ok = api.patch(f"{V1}/users/me", json={"display_name": "Back"}, headers=alice)
    assert ok.status_code == 200, ok.text
    assert events(soundhive_services, "user.unbanned") == [{"user_id": alice_id}]


def test_ban_from_a_content_report_bans_its_author(api: Any, soundhive_services: Any) -> None:
    alice, _ = user(api, "alice")
    bob, _ = user(api, "bob")
    troll, troll_id = user(api, "troll")
    mod, mod_id = user(api, "mod", "moderator")
    track = ready_track(api, soundhive_services, alice)
    spam = comment(api, track["id"], troll, body="buy followers")
    on_comment = filed(api, bob, "comment", spam)
    on_user = filed(api, alice, "user", troll_id)

    entry = resolved(api, mod, on_comment["id"], "ban")["audit_entry"]
    assert (entry["action"], entry["target_type"], entry["target_id"]) == (
        "user.ban",
        "user",
        troll_id,
    )
    assert entry["details"]["reported"] == {"type": "comment", "id": spam}
    assert set(entry["details"]["closed_report_ids"]) == {on_comment["id"], on_user["id"]}
    problem(api.patch(f"{V1}/users/me", json={"bio": "x"}, headers=troll), 403, "ACCOUNT_BANNED")
    assert spam not in comment_ids(api, track["id"], bob)
    # nobody bans themselves, even through a report on their own content
    own = ready_track(api, soundhive_services, mod)
    problem(
        resolve(api, mod, filed(api, bob, "track", own["id"])["id"], "ban"), 422, "CANNOT_BAN_SELF"
    )
    problem(api.post(f"{V1}/admin/users/{mod_id}/ban", headers=mod), 422, "CANNOT_BAN_SELF")


def test_deleting_a_track_removes_it_for_everyone_with_its_dependents(
    api: Any, soundhive_services: Any
) -> None:
    alice, alice_id = user(api, "alice")
    bob, _ = user(api, "bob")
    mod, _ = user(api, "mod", "moderator")
    track = ready_track(api, soundhive_services, alice)
    keep = ready_track(api, soundhive_services, alice)
    tid = track["id"]
    assert api.post(f"{V1}/tracks/{tid}/like", headers=bob).status_code == 200
    comment(api, tid, bob)
    pid = playlist_with(api, bob, tid, keep["id"])
    rep = filed(api, bob, "track", tid)

    entry = resolved(api, mod, rep["id"], "delete")["audit_entry"]
    assert entry["action"] == "track.delete" and entry["details"]["owner_id"] == alice_id
    for headers in (alice, bob, mod):
        problem(api.get(f"{V1}/tracks/{tid}", headers=headers), 404, "TRACK_NOT_FOUND")
    assert owner_track_ids(api, alice_id, alice) == {keep["id"]}
    assert playlist_tracks(api, pid, bob) == {keep["id"]}
    for table in ("likes", "comments", "playlist_tracks"):
        count = sql(soundhive_services, f"SELECT count(*) FROM {table} WHERE track_id = %s", tid)
        assert count == [(0,)], table
    deleted = events(soundhive_services, "track.deleted")
    assert len(deleted) == 1 and deleted[0]["track_id"] == tid
    # the report outlives its target; acting on a target that is gone is 404
    assert api.get(f"{V1}/admin/reports/{rep['id']}", headers=mod).json()["action"] == "delete"
    problem(api.delete(f"{V1}/admin/tracks/{tid}", headers=mod), 404, "TRACK_NOT_FOUND")
    # the direct route, with a note in the query
    direct = api.delete(f"{V1}/admin/tracks/{keep['id']}", params={"note": " dmca "}, headers=mod)
    assert direct.status_code == 200 and direct.json()["note"] == "dmca"
    assert owner_track_ids(api, alice_id, alice) == set()


def test_dismissing_leaves_the_target_alone_and_allows_a_new_report(
    api: Any, soundhive_services: Any
) -> None:
    alice, _ = user(api, "alice")
    bob, _ = user(api, "bob")
    mod, _ = user(api, "mod", "moderator")
    track = ready_track(api, soundhive_services, alice)
    rep = filed(api, bob, "track", track["id"])
    done = resolved(api, mod, rep["id"], "dismiss")
    assert (done["report"]["status"], done["report"]["action"]) == ("dismissed", "dismiss")
    entry = done["audit_entry"]
    assert (entry["action"], entry["target_id"]) == ("report.dismiss", track["id"])
    assert "changed" not in entry["details"]
    assert api.get(f"{V1}/tracks/{track['id']}", headers=bob).status_code == 200
    assert filed(api, bob, "track", track["id"])["id"] != rep["id"]
    listed = api.get(f"{V1}/admin/reports", params={"status": "dismissed"}, headers=mod).json()
    assert [r["id"] for r in listed["items"]] == [rep["id"]]
    assert len(events(soundhive_services, "report.resolved")) == 1


def test_action_matrix_of_resolve(api: Any, soundhive_services: Any) -> None:
    alice, alice_id = user(api, "alice")
    bob, _ = user(api, "bob")
    mod, _ = user(api, "mod", "moderator")
    on_user = filed(api, bob, "user", alice_id)
    pid = playlist_with(api, alice)
    on_playlist = filed(api, bob, "playlist", pid)
    for report_id, action in (
        (on_user["id"], "hide"),
        (on_user["id"], "delete"),
        (on_playlist["id"], "hide"),
    ):
        err = problem(resolve(api, mod, report_id, action), 422, "ACTION_NOT_APPLICABLE")
        assert "dismiss" in err["detail"]
    problem(resolve(api, mod, on_user["id"], "purge"), 422, "VALIDATION_FAILED")
    problem(resolve(api, mod, str(uuid.uuid4()), "dismiss"), 404, "REPORT_NOT_FOUND")
    extra = api.post(
        f"{V1}/admin/reports/{on_user['id']}/resolve",
        json={"action": "dismiss", "status": "open"},
        headers=mod,
    )
    problem(extra, 422, "VALIDATION_FAILED")
    assert audit(api, mod) == []  # nothing happened: no report changed, nothing logged
    assert api.get(f"{V1}/admin/reports/{on_user['id']}", headers=mod).json()["status"] == "open"

    entry = resolved(api, mod, on_playlist["id"], "delete")["audit_entry"]
    assert entry["action"] == "playlist.delete"
    problem(api.get(f"{V1}/playlists/{pid}", headers=alice), 404, "PLAYLIST_NOT_FOUND")
    assert len(events(soundhive_services, "playlist.deleted")) == 1


def test_direct_actions_need_an_existing_target_and_settle_its_reports(
    api: Any, soundhive_services: Any
) -> None:
    alice, _ = user(api, "alice")
    bob, _ = user(api, "bob")
    mod, _ = user(api, "mod", "moderator")
    missing = uuid.uuid4()
    for method, path, code in (
        ("POST", f"/admin/tracks/{missing}/hide", "TRACK_NOT_FOUND"),
        ("POST", f"/admin/tracks/{missing}/unhide", "TRACK_NOT_FOUND"),
        ("DELETE", f"/admin/tracks/{missing}", "TRACK_NOT_FOUND"),
        ("POST", f"/admin/comments/{missing}/hide", "COMMENT_NOT_FOUND"),
        ("POST", f"/admin/comments/{missing}/unhide", "COMMENT_NOT_FOUND"),
        ("DELETE", f"/admin/comments/{missing}", "COMMENT_NOT_FOUND"),
        ("DELETE", f"/admin/playlists/{missing}", "PLAYLIST_NOT_FOUND"),
        ("POST", f"/admin/users/{missing}/ban", "USER_NOT_FOUND"),
        ("POST", f"/admin/users/{missing}/unban", "USER_NOT_FOUND"),
    ):
        problem(api.request(method, V1 + path, headers=mod), 404, code)
    bad_note = api.post(f"{V1}/admin/tracks/{missing}/hide", json={"note": "x" * 2001}, headers=mod)
    problem(bad_note, 422, "VALIDATION_FAILED")
    assert audit(api, mod) == []

    track = ready_track(api, soundhive_services, alice)
    words = comment(api, track["id"], alice)
    rep = filed(api, bob, "comment", words)
    deleted = api.delete(f"{V1}/admin/comments/{words}", headers=mod)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["details"]["closed_report_ids"] == [rep["id"]]
    assert api.get(f"{V1}/admin/reports/{rep['id']}", headers=mod).json()["action"] == "delete"
    problem(api.get(f"{V1}/comments/{words}", headers=mod), 404, "COMMENT_NOT_FOUND")


def test_an_action_and_its_record_commit_or_roll_back_together(
    api: Any, soundhive_services: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """remove_track runs its own ``session.begin()``; it must join our transaction, so a
    failure after it (here: injected) undoes the deletion, the report update and the entry."""
    from core.errors import ServiceUnavailable
    from skills.music_streaming_basic import api as tracks_api

    alice, _ = user(api, "alice")
    bob, _ = user(api, "bob")
    mod, _ = user(api, "mod", "moderator")
    track = ready_track(api, soundhive_services, alice)
    tid = track["id"]
    assert api.post(f"{V1}/tracks/{tid}/like", headers=bob).status_code == 200
    rep = filed(api, bob, "track", tid)
    real_remove = tracks_api.remove_track

    async def remove_then_fail(*args: Any, **kwargs: Any) -> bool:
        assert await real_remove(*args, **kwargs)
        raise ServiceUnavailable("injected: the database went away after the track's block")

    monkeypatch.setattr(tracks_api, "remove_track", remove_then_fail)
    problem(resolve(api, mod, rep["id"], "delete"), 503, "SERVICE_UNAVAILABLE")
    assert sql(soundhive_services, "SELECT count(*) FROM tracks WHERE id = %s", tid) == [(1,)]
    assert sql(soundhive_services, "SELECT count(*) FROM likes WHERE track_id = %s", tid) == [(1,)]
    assert api.get(f"{V1}/admin/reports/{rep['id']}", headers=mod).json()["status"] == "open"
    assert audit(api, mod) == [] and events(soundhive_services, "track.deleted") == []

    # the target vanishing between the look-up and the change is a 404 and changes nothing
    async def gone(*args: Any, **kwargs: Any) -> bool:
        return False

    monkeypatch.setattr(tracks_api, "set_hidden", gone)
    problem(resolve(api, mod, rep["id"], "hide"), 404, "TRACK_NOT_FOUND")
    assert api.get(f"{V1}/admin/reports/{rep['id']}", headers=mod).json()["status"] == "open"
    assert audit(api, mod) == [] and events(soundhive_services, "track.hidden") == []
    monkeypatch.undo()
    assert resolved(api, mod, rep["id"], "delete")["audit_entry"]["action"] == "track.delete"


def test_concurrent_resolutions_of_one_report_let_exactly_one_win(
    api: Any, soundhive_services: Any
) -> None:
    alice, _ = user(api, "alice")
    bob, _ = user(api, "bob")
    mods = [user(api, f"mod{i}", "moderator")[0] for i in range(6)]
    track = ready_track(api, soundhive_services, alice)
    rep = filed(api, bob, "track", track["id"])
    with ThreadPoolExecutor(len(mods)) as pool:
        answers = list(pool.map(lambda h: resolve(api, h, rep["id"], "hide"), mods))
    assert sorted(r.status_code for r in answers) == [200] + [409] * (len(mods) - 1)
    for loser in (r for r in answers if r.status_code == 409):
        problem(loser, 409, "REPORT_NOT_OPEN")
    assert len(audit(api, mods[0])) == 1


def test_a_banned_moderator_may_read_but_not_act(api: Any, soundhive_services: Any) -> None:
    mod, mod_id = user(api, "mod", "moderator")
    boss, _ = user(api, "boss", "admin")
    alice, alice_id = user(api, "alice")
    assert api.post(f"{V1}/admin/users/{mod_id}/ban", headers=boss).status_code == 200
    problem(api.post(f"{V1}/admin/users/{alice_id}/ban", headers=mod), 403, "ACCOUNT_BANNED")
    assert api.get(f"{V1}/admin/audit-log", headers=mod).status_code == 200
    assert api.get(f"{V1}/users/{alice_id}", headers=alice).status_code == 200


# -- the audit log --------------------------------------------------------------------------
def test_audit_log_has_one_entry_per_action_and_is_append_only(
    api: Any, soundhive_services: Any
) -> None:
    alice, alice_id = user(api, "alice")
    mod, mod_id = user(api, "mod", "moderator")
    boss, boss_id = user(api, "boss", "admin")
    track = ready_track(api, soundhive_services, alice)
    tid = track["id"]
    steps = [
        (mod, "POST", f"/admin/tracks/{tid}/hide", "track.hide"),
        (boss, "POST", f"/admin/tracks/{tid}/unhide", "track.unhide"),
        (mod, "POST", f"/admin/users/{alice_id}/ban", "user.ban"),
        (mod, "POST", f"/admin/users/{alice_id}/unban", "user.unban"),
        (boss, "DELETE", f"/admin/tracks/{tid}", "track.delete"),
    ]
    for headers, method, path, _ in steps:
        r = api.request(method, V1 + path, headers=headers)
        assert r.status_code == 200, r.text
    entries = audit(api, mod)
    assert [e["action"] for e in entries] == [s[3] for s in reversed(steps)]
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)
    actors = {"mod": mod_id, "boss": boss_id}
    for entry in entries:
        assert entry["actor_id"] == actors[entry["actor_sub"]] and entry["created_at"]
    # filters and keyset pages
    assert [e["action"] for e in audit(api, mod, actor_id=boss_id)] == [
        "track.delete",
        "track.unhide",
    ]
    assert [e["action"] for e in audit(api, mod, target_id=alice_id)] == ["user.unban", "user.ban"]
    assert [e["action"] for e in audit(api, mod, action="track.hide")] == ["track.hide"]
    assert audit(api, mod, target_type="comment") == []
    page = api.get(f"{V1}/admin/audit-log", params={"limit": 2}, headers=mod).json()
    seen = [e["id"] for e in page["items"]]
    while page["next_cursor"]:
        page = api.get(
            f"{V1}/admin/audit-log", params={"limit": 2, "cursor": page["next_cursor"]}, headers=mod
        ).json()
        seen += [e["id"] for e in page["items"]]
    assert seen == [e["id"] for e in entries]
    problem(
        api.get(f"{V1}/admin/audit-log", params={"cursor": "forged"}, headers=mod),
        422,
        "INVALID_CURSOR",
    )

    # the database itself refuses to rewrite history, even for a statement matching no row
    url = plain_url(soundhive_services.database_url)
    for statement in (
        "UPDATE moderation_audit_log SET note = 'nothing happened'",
        "DELETE FROM moderation_audit_log",
        "DELETE FROM moderation_audit_log WHERE false",
        "INSERT INTO moderation_audit_log (id, actor_sub, action, target_type, target_id) "
        "VALUES (1, 'x', 'x', 'track', gen_random_uuid())",
    ):
        with psycopg.connect(url, autocommit=True) as conn, pytest.raises(psycopg.Error) as err:
            conn.execute(statement)
        assert re.search(r"append-only|GENERATED ALWAYS", str(err.value)), str(err.value)
    assert audit(api, mod) == entries


# -- roles ----------------------------------------------------------------------------------
def test_every_admin_route_is_listed_here() -> None:
    """The parametrized role tests below cover the whole router (sanity check of the list)."""
    assert len(ADMIN_ROUTES) >= 13
    assert all(path.startswith(f"{V1}/admin/") for _, path in ADMIN_ROUTES)


def test_the_app_mounts_no_other_admin_route(api: Any) -> None:
    """Whatever skill adds an ``/admin`` route, it shows up here and must be in the list."""
    spec = api.get("/openapi.json").json()
    mounted = {
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        if path.startswith(f"{V1}/admin")
        for method in operations
    }
    assert mounted == set(ADMIN_ROUTES)


@pytest.mark.parametrize(
    ("method", "path"), ADMIN_ROUTES, ids=[f"{m} {p}" for m, p in ADMIN_ROUTES]
)
def test_admin_route_is_403_for_a_normal_user_and_401_without_a_token(
    api: Any, method: str, path: str
) -> None:
    url = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
    body = {"action": "dismiss"} if path.endswith("/resolve") else None
    forbidden = api.request(method, url, json=body, headers=api.auth("someone"))
    err = problem(forbidden, 403, "FORBIDDEN")
    assert "moderator" in err["detail"]
    for roles in (("listener",), ("premium", "artist")):
        problem(
            api.request(method, url, json=body, headers=api.auth("other", *roles)), 403, "FORBIDDEN"
        )
    problem(api.request(method, url, json=body), 401, "UNAUTHORIZED")
    assert audit(api, api.auth("mod", "moderator")) == []  # refused calls changed nothing
