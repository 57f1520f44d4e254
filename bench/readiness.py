"""When objects became Ready, as a watch shows it: figure 6's clock for bindings and their Certificates.

A thread lists the collection once (for its resourceVersion) and then watches it, noting for each object
the monotonic time it was first seen and first seen with the condition Ready=True. Watching instead of
polling the lists keeps the bench's own load off the API server (a list of 3,000 bindings every second
is megabytes), and times each object to the event, not to the next poll.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

#: Seconds each watch request lasts; the thread then watches again from where it was (and sees a stop).
WATCH_SECONDS = 20


def is_ready(obj: dict) -> bool:
    return any(
        cond.get("type") == "Ready" and cond.get("status") == "True"
        for cond in (obj.get("status") or {}).get("conditions") or []
    )


class ReadyTimes:
    """Watches `path` (a namespaced collection) from `start()` on; `seen` and `ready` map names to times,
    `latest` to what `track` made of each object's last version."""

    def __init__(self, client: Callable[[], httpx.Client], path: str, *, ready: Callable[[dict], bool] = is_ready,
                 track: Callable[[dict], Any] | None = None, clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.client, self.path, self.is_ready, self.track, self.clock = client, path, ready, track, clock
        self.seen: dict[str, float] = {}
        self.ready: dict[str, float] = {}
        self.latest: dict[str, Any] = {}
        self.error = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch {path}", daemon=True)

    def start(self) -> ReadyTimes:
        with self.client() as api:
            listed = api.get(self.path, params={"limit": "1"}).raise_for_status().json()
        self._version = listed["metadata"]["resourceVersion"]
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # the thread ends with its current watch request, as a daemon meanwhile

    def count_ready(self, names: set[str]) -> int:
        return sum(1 for name in names if name in self.ready)

    def _run(self) -> None:
        try:
            with self.client() as api:
                while not self._stop.is_set():
                    params = {"watch": "1", "resourceVersion": self._version, "allowWatchBookmarks": "true",
                              "timeoutSeconds": str(WATCH_SECONDS)}  # fmt: skip
                    with api.stream("GET", self.path, params=params, timeout=WATCH_SECONDS + 30) as response:
                        response.raise_for_status()
                        for line in response.iter_lines():
                            if line.strip():
                                self._note(json.loads(line))
        except Exception as error:  # noqa: BLE001 - reported by the figure, which then lacks these times
            self.error = f"{type(error).__name__}: {error}"

    def _note(self, event: dict) -> None:
        now, obj = self.clock(), event.get("object") or {}
        if event.get("type") == "ERROR":
            raise RuntimeError(f"watch of {self.path} ended: {obj.get('message')}")
        self._version = (obj.get("metadata") or {}).get("resourceVersion") or self._version
        if event.get("type") in ("ADDED", "MODIFIED"):
            name = obj["metadata"]["name"]
            self.seen.setdefault(name, now)
            if name not in self.ready and self.is_ready(obj):
                self.ready[name] = now
            if self.track is not None:
                self.latest[name] = self.track(obj)
