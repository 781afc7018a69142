"""The baseline of ``bench/load.py``: a bare FastAPI app with one JSON endpoint.

    .venv/bin/uvicorn baseline_app:app --app-dir bench --workers 2 --port 8100

Same stack as the API (uvicorn with uvloop + httptools, FastAPI, Pydantic), none of
Soundhive's middleware, auth, database or cache: the ceiling a Python endpoint reaches here.
"""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/ping")
async def ping() -> dict[str, str]:
    """One small JSON object, like a cached API read without the work."""
    return {"status": "ok"}
