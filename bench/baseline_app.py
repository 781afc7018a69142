"""The baseline of ``bench/load.py``: a bare FastAPI app, and FastAPI's own floor for a read.

    .venv/bin/uvicorn baseline_app:app --app-dir bench --workers 2 --port 8100

Same stack as the API (uvicorn with uvloop + httptools, FastAPI, Pydantic), none of
Soundhive's middleware, auth, database or cache.

* ``GET /ping`` — one small JSON object: the ceiling a Python endpoint reaches here (the
  issue's baseline).
* ``GET /floor/tracks/{id}`` — what FastAPI itself costs for the *shape* of an
  authenticated cached track read, with none of Soundhive's work: as many routes in front of
  it as the API has, a bearer-token dependency with the caller's account beneath it (each a
  dict look-up), a UUID path parameter, and a ``response_model`` with the fields of
  ``TrackDetail``. Soundhive's read cannot be faster than this on the same machine, so it
  bounds what any tuning of Soundhive's own code can reach (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException
from pydantic import BaseModel

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
FILLER_ROUTES = 17
"""Routes FastAPI tries before it reaches ``GET /api/v1/tracks/{track_id}`` in Soundhive with
every skill enabled: it matches routes one by one, a few microseconds each."""


@app.get("/ping")
async def ping() -> dict[str, str]:
    """One small JSON object, like a cached API read without the work."""
    return {"status": "ok"}


class FloorTrack(BaseModel):
    """The fields of ``TrackDetail`` (nested waveform and cover left out)."""

    id: uuid.UUID
    owner_id: uuid.UUID
    title: str
    artist_name: str | None = None
    description: str | None = None
    tags: list[str] = []
    mood: str | None = None
    visibility: str
    status: str
    hidden: bool = False
    duration_ms: int | None = None
    sample_rate: int | None = None
    channels: int | None = None
    bitrate: int | None = None
    bpm: float | None = None
    loudness_lufs: float | None = None
    like_count: int = 0
    play_count: int = 0
    comment_count: int = 0
    created_at: datetime
    updated_at: datetime
    stream_url: str | None = None


_ACCOUNTS: dict[str, dict[str, str]] = {}
_NOW = datetime.now(UTC)


async def principal(authorization: Annotated[str | None, Header()] = None) -> str:
    if not authorization or not authorization.startswith("Bearer "):
        raise HTTPException(401)
    return authorization[7:]


async def account(token: Annotated[str, Depends(principal)]) -> dict[str, str]:
    found = _ACCOUNTS.get(token)
    if found is None:
        found = _ACCOUNTS[token] = {"id": str(uuid.uuid4())}
    return found


floor = APIRouter(prefix="/floor")
for n in range(FILLER_ROUTES):

    async def filler() -> dict[str, int]:
        return {}

    floor.add_api_route(f"/filler{n}/{{item_id}}", filler, methods=["GET"])


@floor.get("/tracks/{track_id}", response_model=FloorTrack)
async def floor_track(
    track_id: uuid.UUID, caller: Annotated[dict[str, str], Depends(account)]
) -> dict[str, object]:
    return {
        "id": track_id,
        "owner_id": caller["id"],
        "title": "floor",
        "tags": ["lofi", "night"],
        "visibility": "public",
        "status": "ready",
        "duration_ms": 183000,
        "like_count": 12,
        "created_at": _NOW,
        "updated_at": _NOW,
        "stream_url": f"/storage/{track_id}?sig=0",
    }


app.include_router(floor)
