"""The console of the demo (and of any walkthrough run step by step): each step as it happens, every line
stamped with the time since the start, and a heartbeat while a step runs."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TextIO

#: Seconds between "still ..." lines while a step runs.
HEARTBEAT_SECONDS = 5.0


class Console:
    """Prints each step as it happens, every line stamped with the time since the start; while a step
    runs, a "still ..." line every HEARTBEAT_SECONDS, so a person watching never wonders whether it hung."""

    def __init__(
        self, steps: int, out: TextIO = sys.stdout, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.steps, self.out, self.clock = steps, out, clock
        self.started = clock()
        self.step_number = 0
        self.activity = ""
        self._lock = threading.Lock()

    def line(self, text: str = "") -> None:
        stamped = f"[{self.clock() - self.started:6.1f}s] {text}" if text else ""
        with self._lock:
            try:
                self.out.write(stamped + "\n")
                self.out.flush()
            except OSError:  # the reader went away (`make demo | head`): carry on, so the clean-up runs
                self.out = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process

    def note(self, text: str, prefix: str = "") -> None:
        for line in text.strip("\n").splitlines() or [""]:
            self.line(f"      {prefix}{line}")

    def doing(self, activity: str) -> None:
        """Say what the step does now; the heartbeat repeats it."""
        self.activity = activity
        self.note(f"{activity} ...")

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.step_number += 1
        self.activity = f"on step {self.step_number}/{self.steps}"
        self.line(f"{self.step_number}/{self.steps}  {title}")
        begun = self.clock()
        stop = threading.Event()
        heartbeat = threading.Thread(target=self._heartbeat, args=(stop, begun), daemon=True)
        heartbeat.start()
        try:
            yield
        except KeyboardInterrupt:
            self.note(f"interrupted after {self.clock() - begun:.1f}s")
            raise
        except BaseException:
            self.note(f"FAILED after {self.clock() - begun:.1f}s")
            raise
        else:
            self.note(f"done in {self.clock() - begun:.1f}s")
        finally:
            stop.set()
            heartbeat.join()

    def _heartbeat(self, stop: threading.Event, begun: float) -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            self.note(f"... still {self.activity} ({self.clock() - begun:.0f}s)")
