"""Track metadata, visibility, owner edits, deletion and user track lists over real HTTP."""

from __future__ import annotations

import json
import uuid

import httpx
import redis

from tests.music_helpers import ready_track, sql, upload, wav_bytes


def test_detail_has_the_contract_fields_and_a_working_stream_url(api, soundhive_services) -> None:
    me = api.auth("artist")
    track = ready_track(
        api, soundhive_services, me, title="Song", tags=["Lo-Fi", "#chill", "lo-fi"]
    )
    expected = {
        "id",
        "owner_id",
        "title",
        "artist_name",
        "description",
        "tags",
        "mood",
        "visibility",
        "status",
        "failure_reason",
        "duration_ms",
        "sample_rate",
        "channels",
        "bitrate",
        "bpm",
        "loudness_lufs",
        "waveform",
        "cover_url",
        "like_count",
        "comment_count",
        "play_count",
        "created_at",
        "updated_at",
        "stream_url",
    }
    assert expected <= set(track)
    assert track["tags"] == ["lo-fi", "chill"]
    anonymous = api.get(f"/api/v1/tracks/{track['id']}")
    assert anonymous.status_code == 200 and anonymous.json()["stream_url"]
    assert httpx.get(anonymous.json()["stream_url"]).status_code == 200


def test_visibility_rules(api, soundhive_services) -> None:
    owner, other = api.auth("vis-owner"), api.auth("vis-other")
    public = ready_track(api, soundhive_services, owner, title="pub")
    unlisted = ready_track(api, soundhive_services, owner, title="unl", visibility="unlisted")
    private = ready_track(api, soundhive_services, owner, title="priv", visibility="private")
    processing = upload(api, owner, wav_bytes(seconds=1), content_type="audio/wav").json()
    assert api.get(f"/api/v1/tracks/{public['id']}", headers=other).status_code == 200
    assert api.get(f"/api/v1/tracks/{unlisted['id']}", headers=other).status_code == 200
    for hidden in (private, processing):
        r = api.get(f"/api/v1/tracks/{hidden['id']}", headers=other)
        assert r.status_code == 404 and r.json()["code"] == "TRACK_NOT_FOUND"
        assert api.get(f"/api/v1/tracks/{hidden['id']}", headers=owner).status_code == 200
    assert (
        api.get(f"/api/v1/tracks/{private['id']}", headers=api.auth("mod", "moderator")).status_code
        == 200
    )
    owner_id = public["owner_id"]
    others_view = api.get(f"/api/v1/users/{owner_id}/tracks", headers=other).json()
    assert [t["title"] for t in others_view["items"]] == ["pub"]
    own_view = api.get(f"/api/v1/users/{owner_id}/tracks", headers=owner).json()
    assert len(own_view["items"]) == 4
    stream = api.get(
        f"/api/v1/tracks/{private['id']}/stream", headers=other, follow_redirects=False
    )
    assert stream.status_code == 404


def test_moderation_hidden_track_disappears_for_others(api, soundhive_services) -> None:
    owner = api.auth("hid-owner")
    track = ready_track(api, soundhive_services, owner)
    sql(soundhive_services, "UPDATE tracks SET is_hidden = true WHERE id = %s", track["id"])
    redis.Redis.from_url(soundhive_services.redis_url).delete(f"sh:track:{track['id']}")
    assert api.get(f"/api/v1/tracks/{track['id']}", headers=api.auth("x")).status_code == 404
    mine = api.get(f"/api/v1/tracks/{track['id']}", headers=owner).json()
    assert mine["hidden"] is True


def test_owner_edits_and_cache_invalidation(api, soundhive_services) -> None:
    owner = api.auth("editor")
    track = ready_track(api, soundhive_services, owner, title="Before")
    cache = redis.Redis.from_url(soundhive_services.redis_url)
    assert cache.exists(f"sh:track:{track['id']}")
    r = api.patch(
        f"/api/v1/tracks/{track['id']}",
        json={"title": "After", "tags": ["New"], "mood": "happy", "visibility": "unlisted"},
        headers=owner,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["title"], body["tags"], body["mood"], body["visibility"]) == (
        "After",
        ["new"],
        "happy",
        "unlisted",
    )
    assert api.get(f"/api/v1/tracks/{track['id']}").json()["title"] == "After"
    for bad in (
        {"mood": "grumpy"},
        {"visibility": "secret"},
        {"title": "  "},
        {"like_count": 5},
        {"owner_id": track["owner_id"]},
    ):
        r = api.patch(f"/api/v1/tracks/{track['id']}", json=bad, headers=owner)
        assert r.status_code == 422 and r.json()["code"] == "VALIDATION_FAILED", bad
    assert api.get(f"/api/v1/tracks/{track['id']}").json()["like_count"] == 0


def test_cached_entry_keeps_counters_beside_metadata_and_changes_drop_it(
    api, soundhive_services
) -> None:
    owner = api.auth("hash-owner")
    track = ready_track(api, soundhive_services, owner, title="Hash")
    key = f"sh:track:{track['id']}"
    cache = redis.Redis.from_url(soundhive_services.redis_url)
    entry = cache.hgetall(key)
    assert set(entry) == {b"d", b"like", b"comment", b"play"}
    meta = json.loads(entry[b"d"])
    assert meta["title"] == "Hash" and not {"like_count", "comment_count", "play_count"} & set(meta)
    assert 0 < cache.ttl(key) <= 300

    sql(soundhive_services, "UPDATE tracks SET like_count = 3 WHERE id = %s", track["id"])
    r = api.patch(f"/api/v1/tracks/{track['id']}", json={"title": "Renamed"}, headers=owner)
    assert r.status_code == 200 and r.json()["like_count"] == 3  # reloaded from the database
    assert json.loads(cache.hget(key, "d"))["title"] == "Renamed"
    assert api.delete(f"/api/v1/tracks/{track['id']}", headers=owner).status_code == 204
    assert not cache.exists(key)


async def test_track_cache_seeds_once_bumps_only_cached_entries_and_clamps(
    api, make_settings
) -> None:
    from core.kernel import Kernel
    from skills.music_streaming_basic import track_cache

    kernel = Kernel(make_settings())
    try:
        cache, tid = kernel.cache, uuid.uuid4()
        await track_cache.bump(cache, tid, likes=1)
        assert await track_cache.read(cache, tid) is None  # no entry: a delta creates none
        data = {"id": str(tid), "title": "t", "like_count": 2, "comment_count": 0, "play_count": 5}
        await track_cache.seed(cache, tid, data)
        await track_cache.seed(cache, tid, {**data, "title": "late reader", "like_count": 9})
        await track_cache.bump(cache, tid, likes=1, plays=-1)
        await track_cache.bump(cache, tid)  # nothing to apply
        assert await track_cache.read(cache, tid) == {**data, "like_count": 3, "play_count": 4}
        await track_cache.bump(cache, tid, comments=-2)  # a delta applied twice by the race
        assert (await track_cache.read(cache, tid))["comment_count"] == 0  # readers clamp
        await track_cache.drop(cache, tid)
        assert await track_cache.read(cache, tid) is None
    finally:
        await kernel.aclose()


def test_others_cannot_edit_or_delete(api, soundhive_services) -> None:
    owner, other = api.auth("own"), api.auth("intruder")
    public = ready_track(api, soundhive_services, owner)
    private = ready_track(api, soundhive_services, owner, visibility="private")
    r = api.patch(f"/api/v1/tracks/{public['id']}", json={"title": "mine"}, headers=other)
    assert r.status_code == 403 and r.json()["code"] == "NOT_TRACK_OWNER"
    assert api.delete(f"/api/v1/tracks/{public['id']}", headers=other).status_code == 403
    assert (
        api.patch(f"/api/v1/tracks/{private['id']}", json={"title": "x"}, headers=other).status_code
        == 404
    )
    assert api.delete(f"/api/v1/tracks/{private['id']}", headers=other).status_code == 404
    assert api.delete(f"/api/v1/tracks/{public['id']}").status_code == 401
    assert api.get(f"/api/v1/tracks/{public['id']}").json()["title"] == public["title"]


def test_delete_removes_row_tags_links_object_and_count(
    api, soundhive_services, soundhive_data_dir
) -> None:
    owner = api.auth("deleter")
    track = ready_track(api, soundhive_services, owner, tags=["gone"])
    key = sql(soundhive_services, "SELECT object_key FROM tracks WHERE id = %s", track["id"])[0][0]
    assert (soundhive_data_dir / "objects" / key).exists()
    assert api.get("/api/v1/users/me", headers=owner).json()["tracks_count"] == 1
    assert api.delete(f"/api/v1/tracks/{track['id']}", headers=owner).status_code == 204
    assert api.get(f"/api/v1/tracks/{track['id']}", headers=owner).status_code == 404
    assert sql(soundhive_services, "SELECT count(*) FROM track_tags")[0][0] == 0
    assert sql(soundhive_services, "SELECT name FROM tags") == [("gone",)]  # tags are never deleted
    assert not (soundhive_data_dir / "objects" / key).exists()
    assert api.get("/api/v1/users/me", headers=owner).json()["tracks_count"] == 0
    assert api.delete(f"/api/v1/tracks/{track['id']}", headers=owner).status_code == 404


def test_user_tracks_paginate_newest_first(api, soundhive_services) -> None:
    owner = api.auth("prolific")
    made = [ready_track(api, soundhive_services, owner, title=f"t{i}")["id"] for i in range(5)]
    owner_id = api.get("/api/v1/users/me", headers=owner).json()["id"]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = api.get(f"/api/v1/users/{owner_id}/tracks", params=params).json()
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(made))
    bad = api.get(f"/api/v1/users/{owner_id}/tracks", params={"cursor": "garbage"})
    assert bad.status_code == 422 and bad.json()["code"] == "INVALID_CURSOR"
    assert api.get(f"/api/v1/users/{owner_id}/tracks", params={"limit": 1000}).status_code == 422
    unknown = api.get("/api/v1/users/00000000-0000-0000-0000-000000000000/tracks")
    assert unknown.status_code == 404 and unknown.json()["code"] == "USER_NOT_FOUND"


def test_unknown_and_malformed_ids(api) -> None:
    r = api.get("/api/v1/tracks/00000000-0000-0000-0000-000000000000")
    assert r.status_code == 404 and r.json()["code"] == "TRACK_NOT_FOUND"
    assert api.get("/api/v1/tracks/not-a-uuid").status_code == 422
