"""The example third-party skill works end to end without touching core: its route, its table
and migration branch, its event through the outbox, its actor on a real worker, its cache key."""

from __future__ import annotations

import redis

from core.testing.plugin import wait_for


def test_skill_is_discovered_with_its_contributions(live_server):
    info = live_server.kernel.skills["hello"]
    assert info.enabled and info.version == "0.1.0"
    assert info.tables == ["hello_greetings", "hello_tallies"]
    assert info.actors == ["hello.tally"]
    assert [k.namespace for k in info.cache_keys] == ["hello"]
    assert live_server.kernel.subscriptions["hello.greeted"] == ["hello.tally"]
    assert "POST /api/v1/hello/greetings" in info.routes


def test_openapi_lists_routes_under_the_skill_tag(api):
    spec = api.get("/openapi.json").json()
    assert spec["paths"]["/api/v1/hello/greetings"]["post"]["tags"] == ["hello"]


def test_greeting_is_counted_by_the_actor_on_a_real_worker(api, real_worker, soundhive_services):
    me = api.auth("hello-user")
    for _ in range(3):
        r = api.post("/api/v1/hello/greetings", json={"name": "world"}, headers=me)
        assert r.status_code == 201, r.text

    def tally() -> int:
        return api.get("/api/v1/hello/greetings/world").json()["count"]

    assert wait_for(lambda: tally() == 3, timeout=15)
    cached = redis.Redis.from_url(soundhive_services.redis_url).get("sh:hello:world")
    assert cached is not None and b'"count": 3' in cached


def test_route_needs_a_principal_and_valid_body(api):
    r = api.post("/api/v1/hello/greetings", json={"name": "x"})
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHORIZED"
    r = api.post("/api/v1/hello/greetings", json={"name": ""}, headers=api.auth("u"))
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["body", "name"]
