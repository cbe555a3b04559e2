"""GET /api/watch: what `ragmini serve --watch PATH` has done, for the page to follow.

The watcher thread (ragmini/watch_cli.py `serve_watch`) publishes each event (the
`watch --json` line) into the app's WatchFeed; the page asks for the events after
the last number it saw, waiting up to `wait` seconds for one (a long poll: plain
fetch with the Authorization header, no connection left open at shutdown), and
reloads its counts and documents list when an "update" arrives.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from typing import Annotated, Any

from fastapi import FastAPI, Query
from pydantic import BaseModel, Field

KEEP = 200  # events kept for the page; older ones are only in the server's log
MAX_WAIT_S = 10.0


class WatchFeed:
    """The last KEEP watch events, numbered from 1, and a way to wait for the next."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.watching = False
        self._events: deque[dict] = deque(maxlen=KEEP)
        self._seq = 0
        self._changed = threading.Condition()

    def publish(self, event: dict) -> None:
        with self._changed:
            self._seq += 1
            self._events.append({"seq": self._seq, "time": round(time.time(), 3), **event})
            self._changed.notify_all()

    def since(self, after: int, wait: float = 0.0) -> tuple[int, list[dict]]:
        """(latest number, events numbered above `after`), waiting up to `wait`
        seconds for one when there is none yet."""
        with self._changed:
            if self._seq <= after and wait > 0:
                self._changed.wait_for(lambda: self._seq > after, timeout=wait)
            return self._seq, [e for e in self._events if e["seq"] > after]


class WatchOut(BaseModel):
    watching: bool = Field(description="a watcher runs beside this server (serve --watch)")
    paths: list[str] = Field(description="the folders and files it keeps in sync")
    seq: int = Field(description="the number of the latest event; pass it as `after`")
    events: list[dict[str, Any]] = Field(
        description="events numbered above `after`, oldest first: `watch --json` lines "
                    "(event: ready, update, waiting, missing, back, rescan, error, stopped) "
                    "with `seq` and `time` (Unix seconds)")


def mount(app: FastAPI) -> None:
    """Give `app` a WatchFeed (app.state.watch_feed) and the GET /api/watch route."""
    feed = app.state.watch_feed = WatchFeed()

    @app.get("/api/watch", tags=["store"], response_model=WatchOut)
    async def watch_events(
            after: Annotated[int, Query(ge=0, description="the last `seq` seen")] = 0,
            wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S,
                                         description="seconds to wait for a newer event")] = 0.0,
    ) -> dict:
        """The watcher's events after `after` (`ragmini serve --watch PATH`)."""
        seq, events = await asyncio.to_thread(feed.since, after, wait)
        return {"watching": feed.watching, "paths": feed.paths, "seq": seq, "events": events}
