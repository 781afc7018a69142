"""recommendation-basic over real HTTP, on the real PostgreSQL and Redis of the test session.

Likes and plays go through their own skills' endpoints; catalogue tracks are written with SQL
(see ``tests/test_discovery.py`` for the helpers).
"""

from __future__ import annotations

import uuid
from typing import Any

from skills.recommendation_basic.tasks import forget_recommendations
from tests.music_helpers import sql
from tests.test_discovery import API, add_track, ids, kernel, problem, user

__all__ = ["kernel"]  # the fixture, shared with test_discovery


def recommendations(api: Any, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = api.get(f"{API}/recommendations", headers=headers, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"items", "next_cursor"}
    for item in body["items"]:
        assert set(item) == {"track", "score", "reason"}
        assert item["reason"]["text"] and item["reason"]["kind"] in {
            "co_liked",
            "tag_affinity",
            "shared_tags",
            "trending",
        }
    return body


def similar(api: Any, track_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = api.get(f"{API}/tracks/{track_id}/similar", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"items", "next_cursor"}
    return body


def track_ids(page: dict[str, Any]) -> list[str]:
    return [item["track"]["id"] for item in page["items"]]


def reasons(page: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["track"]["id"]: item["reason"] for item in page["items"]}


def like(api: Any, headers: dict[str, str], track_id: str) -> None:
    response = api.post(f"{API}/tracks/{track_id}/like", headers=headers)
    assert response.status_code in (200, 201), response.text


def play(api: Any, headers: dict[str, str], track_id: str) -> None:
    response = api.post(f"{API}/tracks/{track_id}/play", headers=headers)
    assert response.status_code == 200 and response.json()["counted"], response.text


def test_recommendations_need_a_token(api: Any) -> None:
    problem(api.get(f"{API}/recommendations"), 401, "UNAUTHORIZED")


def test_a_new_listener_gets_trending_never_their_own(api: Any, soundhive_services: Any) -> None:
    me, my_id = user(api, "newbie")
    _, artist = user(api, "artist")
    hot = add_track(soundhive_services, artist, "Hot", trending=9)
    warm = add_track(soundhive_services, artist, "Warm", trending=4)
    add_track(soundhive_services, artist, "Cold")  # not trending at all
    add_track(soundhive_services, my_id, "Mine", trending=20)
    page = recommendations(api, me)
    assert track_ids(page) == [hot, warm]
    assert reasons(page)[hot] == {
        "kind": "trending",
        "text": "Trending now",
        "tags": [],
        "track_id": None,
        "listeners": None,
    }
    assert page["items"][0]["track"]["title"] == "Hot"


def test_tag_affinity_from_likes_and_plays(api: Any, soundhive_services: Any) -> None:
    me, _ = user(api, "taste")
    _, artist = user(api, "maker")
    _, other = user(api, "maker2")
    liked = [add_track(soundhive_services, artist, f"Liked {n}", tags=("lofi",)) for n in range(2)]
    played = add_track(soundhive_services, other, "Played", tags=("jazz",))
    lofi = add_track(soundhive_services, other, "More lofi", tags=("lofi", "night"))
    jazz = add_track(soundhive_services, other, "More jazz", tags=("jazz",))
    loud = add_track(soundhive_services, other, "Loud", tags=("metal",), trending=50)
    for track_id in liked:
        like(api, me, track_id)
    play(api, me, played)
    page = recommendations(api, me)
    assert track_ids(page) == [lofi, jazz, loud]  # likes weigh 2, plays 1, then trending
    why = reasons(page)
    assert why[lofi]["kind"] == "tag_affinity" and why[lofi]["tags"] == ["lofi"]
    assert why[lofi]["text"] == "Matches tags you like: lofi"
    assert why[jazz]["tags"] == ["jazz"] and why[loud]["kind"] == "trending"
    scores = [item["score"] for item in page["items"]]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[1] > 0


def test_people_who_liked_this_also_liked(api: Any, soundhive_services: Any) -> None:
    me, my_id = user(api, "me")
    _, artist = user(api, "band")
    seed = add_track(soundhive_services, artist, "잔잔한 밤 산책")
    both = add_track(soundhive_services, artist, "Often together")
    once = add_track(soundhive_services, artist, "Once together")
    mine = add_track(soundhive_services, my_id, "My own song")
    for sub, extra in (("n1", [both, mine]), ("n2", [both]), ("n3", [once])):
        headers, _ = user(api, sub)
        for track_id in [seed, *extra]:
            like(api, headers, track_id)
    like(api, me, seed)
    page = recommendations(api, me)
    assert track_ids(page) == [both, once]  # never the caller's own, nor what they liked
    why = reasons(page)
    assert why[both]["kind"] == "co_liked" and why[both]["listeners"] == 2
    assert why[both]["track_id"] == seed
    assert why[both]["text"] == "Listeners who liked “잔잔한 밤 산책” also liked this"
    assert why[once]["listeners"] == 1


async def test_cached_per_user_refreshed_by_a_like_and_filtered_at_read(
    api: Any, soundhive_services: Any, kernel: Any
) -> None:
    me, my_id = user(api, "cached")
    _, artist = user(api, "singer")
    first = add_track(soundhive_services, artist, "First", trending=3)
    second = add_track(soundhive_services, artist, "Second", trending=2)
    assert track_ids(recommendations(api, me)) == [first, second]
    later = add_track(soundhive_services, artist, "Later", trending=10)
    assert track_ids(recommendations(api, me)) == [first, second]  # cached
    sql(soundhive_services, "UPDATE tracks SET visibility = 'private' WHERE id = %s", first)
    assert track_ids(recommendations(api, me)) == [second]  # hydration filters every read
    like(api, me, second)  # track.liked: the worker would call the actor below
    await forget_recommendations(kernel, payload={"user_id": my_id, "track_id": second})
    assert track_ids(recommendations(api, me)) == [later]  # liked ones excluded, fresh list


def test_recommendations_page_through_the_list(api: Any, soundhive_services: Any) -> None:
    me, _ = user(api, "pager")
    _, artist = user(api, "prolific")
    made = [add_track(soundhive_services, artist, f"T{n}", trending=100 - n) for n in range(7)]
    first = recommendations(api, me, limit=3)
    assert first["next_cursor"] and len(first["items"]) == 3
    second = recommendations(api, me, limit=3, cursor=first["next_cursor"])
    third = recommendations(api, me, limit=3, cursor=second["next_cursor"])
    assert third["next_cursor"] is None
    assert track_ids(first) + track_ids(second) + track_ids(third) == made


def test_similar_tracks_share_tags_and_likers(api: Any, soundhive_services: Any) -> None:
    viewer, _ = user(api, "listener")
    _, artist = user(api, "duo")
    _, other = user(api, "solo")
    source = add_track(soundhive_services, artist, "Source", tags=("lofi", "night"), mood="calm")
    twin = add_track(soundhive_services, other, "Twin", tags=("night", "lofi"), mood="calm")
    cousin = add_track(soundhive_services, other, "Cousin", tags=("lofi",), mood="party")
    co = add_track(soundhive_services, other, "Co-liked")
    hidden = add_track(soundhive_services, other, "Hidden twin", tags=("lofi", "night"))
    add_track(soundhive_services, other, "Unrelated", tags=("metal",))
    sql(soundhive_services, "UPDATE tracks SET is_hidden = true WHERE id = %s", hidden)
    for sub in ("fan1", "fan2"):
        headers, _ = user(api, sub)
        like(api, headers, source)
        like(api, headers, co)
    page = similar(api, source)
    assert track_ids(page) == [co, twin, cousin]  # co 0.6; twin 0.4 + mood 0.1; cousin 0.2
    why = reasons(page)
    assert why[co] == {
        "kind": "co_liked",
        "text": "Listeners who liked “Source” also liked this",
        "tags": [],
        "track_id": None,
        "listeners": 2,
    }
    assert why[twin]["kind"] == "shared_tags" and sorted(why[twin]["tags"]) == ["lofi", "night"]
    assert why[cousin]["text"] == "Shares tags: lofi"
    assert similar(api, source, viewer) == page  # same for everyone (cached per track)


def test_similar_needs_a_visible_track_and_falls_back_to_trending(
    api: Any, soundhive_services: Any
) -> None:
    owner, owner_id = user(api, "private-owner")
    lonely = add_track(soundhive_services, owner_id, "Lonely", visibility="private")
    hot = add_track(soundhive_services, owner_id, "Hot", trending=5)
    problem(api.get(f"{API}/tracks/{lonely}/similar"), 404, "TRACK_NOT_FOUND")
    problem(api.get(f"{API}/tracks/{uuid.uuid4()}/similar"), 404, "TRACK_NOT_FOUND")
    page = similar(api, lonely, owner)  # the owner sees their private track
    assert track_ids(page) == [hot] and reasons(page)[hot]["kind"] == "trending"
    assert ids({"items": [item["track"] for item in page["items"]]}) == [hot]
