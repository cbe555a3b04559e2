"""GET /api/watch: what `ragmini serve --watch PATH` has done, for the page to follow.

Each route is one call of the API: here `Watching.events` of the watcher the CLI
started (ragmini/api/watching.py). The page asks for the events after the last
number it saw, waiting up to `wait` seconds for one (a long poll: a plain fetch
with the Authorization header, no connection left open at shutdown), and reloads
its counts and documents list when an "update" arrives.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

import ragmini
from ragmini.api.watching import MAX_WAIT_S, NOT_WATCHING
from ragmini.server.models import responses


class WatchOut(BaseModel):
    watching: bool = Field(description="a watcher runs beside this server (serve --watch)")
    paths: list[str] = Field(description="the folders and files it keeps in sync")
    seq: int = Field(description="the number of the latest event; pass it as `after`")
    events: list[dict[str, Any]] = Field(
        description="events numbered above `after`, oldest first: `watch --json` lines "
                    "(event: ready, update, waiting, missing, back, rescan, error, stopped) "
                    "with `seq` and `time` (Unix seconds)")


def make_router(watching: ragmini.Watching | None, *, token: bool) -> APIRouter:
    router = APIRouter()

    @router.get("/api/watch", tags=["store"], response_model=None,
                responses=responses(WatchOut, 422, token=token))
    def watch_events(
            after: Annotated[int, Query(ge=0, description="the last `seq` seen")] = 0,
            wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S,
                                         description="seconds to wait for a newer event")] = 0.0,
    ) -> dict:
        """The watcher's events after `after` (`ragmini serve --watch PATH`); when the
        server watches nothing, `watching` is false and there are none."""
        if watching is None:
            return NOT_WATCHING.to_dict()
        return watching.events(after, wait).to_dict()

    return router
