def test_health_and_problem_for_unknown_route(api):
    assert api.get("/healthz").json() == {"status": "ok"}
    r = api.get("/api/v1/nope", headers={"X-Request-ID": "abc-123"})
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["x-request-id"] == "abc-123"
    body = r.json()
    assert body["code"] == "NOT_FOUND" and body["request_id"] == "abc-123"
    ready = api.get("/readyz").json()
    assert ready["checks"]["database"]["ok"] is True
