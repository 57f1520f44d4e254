"""Run `rolesanywhere-operator` with a memory census on SIGUSR1 (for figure 6's finding).

    python -P bench/operator_census.py --census-file FILE [--tracemalloc] OPERATOR-ARGS...
    (-P: no bench/ on the import path)

Nothing is traced while it runs (tracemalloc would slow the operator and grow its memory, and so
change the very figures measured); on SIGUSR1 it counts the live objects by type, their shallow sizes
and the strings and bytes they hold, and the asyncio tasks by coroutine, and writes that as JSON.
With --tracemalloc (`python -m bench --tracemalloc`: a run to look into memory, not to measure) it traces
from the start, and the census adds where the live memory was allocated.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import sys
import tracemalloc
from collections import Counter


def census() -> dict:
    counts: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    seen: set[int] = set()
    containers = gc.get_objects()
    for obj in containers:
        name = type(obj).__qualname__
        counts[name] += 1
        sizes[name] += sys.getsizeof(obj)
        for referent in gc.get_referents(obj):
            if isinstance(referent, str | bytes) and id(referent) not in seen:
                seen.add(id(referent))
                kind = type(referent).__qualname__
                counts[kind] += 1
                sizes[kind] += sys.getsizeof(referent)
    try:
        tasks = Counter(getattr(t.get_coro(), "__qualname__", "?") for t in asyncio.all_tasks())
    except RuntimeError:  # no running loop in this thread
        tasks = Counter()
    traced, traced_mib = [], None
    if tracemalloc.is_tracing():
        traced_mib = [size / 2**20 for size in tracemalloc.get_traced_memory()]  # now, peak
        snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        traced = [(str(stat.traceback[0]), stat.size, stat.count) for stat in snapshot.statistics("lineno")[:15]]
    return {
        "traced": traced,
        "traced_mib": traced_mib,
        "bytes": sum(sizes.values()),
        "top": [(name, counts[name], size) for name, size in sizes.most_common(8)],
        "tasks": sum(tasks.values()),
        "top_tasks": tasks.most_common(4),
    }


def main() -> int:
    if len(sys.argv) < 3 or sys.argv[1] != "--census-file":
        print("usage: python -P bench/operator_census.py --census-file FILE [--tracemalloc] OPERATOR-ARGS...",
              file=sys.stderr)  # fmt: skip
        return 2
    path, args = sys.argv[2], sys.argv[3:]
    if args[:1] == ["--tracemalloc"]:
        tracemalloc.start()
        args = args[1:]

    def write(_signum, _frame) -> None:
        temporary = f"{path}.tmp"
        with open(temporary, "w") as stream:
            json.dump(census(), stream)
        os.replace(temporary, path)

    signal.signal(signal.SIGUSR1, write)
    from rolesanywhere_operator.cli import main as operator_main

    return operator_main(args)


if __name__ == "__main__":
    sys.exit(main())
