"""`python -m bench [--quick] [--output FILE] [--only N,...] [--scale FIELD=VALUE] [--kubeconfig FILE]`: run the
figures (all, or those --only names; --scale changes one count, for a quicker look at one figure), print
the table, write it (with the machine's description) to bench/RESULTS.md or FILE.

The figures that need no cluster run first, before the control plane adds its own load to the machine.
A figure that cannot be measured (say, the operator does not start) is reported as such; the others
still run, and the exit code is 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import time
import traceback
from pathlib import Path

from localcluster import ToolsUnavailable, tools_bin

from . import (
    admission,
    cold_start,
    endpoint,
    operator_scale,
    pod_issuance,
    pod_start,
    service_load,
    steady_state,
)
from .cluster import OperatorSession
from .context import FULL, QUICK, Context, Scale
from .paths import RESULTS, WORK_DIR
from .report import FigureResult, machine_description, render_markdown, render_text
from .services import AwsStandIns

#: Figure number -> module with TITLE and measure(ctx); in the order they run. Figure 8 runs before 6, whose
#: thousands of bindings and pods would be in the cluster (and the operator's caches) it measures.
FIGURES = {
    1: cold_start, 2: steady_state, 5: pod_start, 3: endpoint, 7: service_load, 4: admission, 8: pod_issuance,
    6: operator_scale,
}  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="small counts: proves the run works (~1 minute)")
    parser.add_argument(
        "--output", type=Path, default=RESULTS, help="where to write the table (default: %(default)s)"
    )
    parser.add_argument("--only", default="", help="comma-separated figure numbers to run (default: all)")
    parser.add_argument(
        "--scale", action="append", default=[], metavar="FIELD=VALUE",
        help="override one count of the run's scale (bench/context.py's Scale), e.g. admission_pods=200; repeatable",
    )  # fmt: skip
    parser.add_argument(
        "--tracemalloc", action="store_true",
        help="trace the operator's allocations from its start, for figure 6's census (slows it: not for figures)",
    )
    parser.add_argument(
        "--kubeconfig", type=Path, help="use this cluster (with cert-manager) instead of starting one"
    )
    parser.add_argument(
        "--work-dir", type=Path, default=WORK_DIR, help="scratch folder, wiped first (default: %(default)s)"
    )
    return parser


def _selected(only: str) -> list[int]:
    if not only.strip():
        return list(FIGURES)
    wanted = []
    for part in only.split(","):
        if not part.strip().isdigit() or int(part) not in FIGURES:
            raise SystemExit(f"--only: expected figure numbers from {sorted(FIGURES)}, got {part!r}")
        wanted.append(int(part))
    return [number for number in FIGURES if number in wanted]


def _scaled(scale: Scale, overrides: list[str]) -> Scale:
    """`scale` with each FIELD=VALUE of `overrides` applied (a tuple field takes comma-separated numbers)."""
    fields = {f.name: f for f in dataclasses.fields(scale)}
    changes: dict[str, object] = {}
    for override in overrides:
        name, _, text = override.partition("=")
        if name not in fields or not text:
            raise SystemExit(f"--scale: expected FIELD=VALUE with FIELD one of {', '.join(fields)}, got {override!r}")
        current = getattr(scale, name)
        try:
            changes[name] = (tuple(int(x) for x in text.split(",")) if isinstance(current, tuple)
                             else type(current)(text))  # fmt: skip
        except ValueError:
            raise SystemExit(f"--scale: {name} takes a number like {current!r}, got {text!r}") from None
    return dataclasses.replace(scale, **changes)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    figures = _selected(args.only)
    try:
        bin_dir = tools_bin()
    except ToolsUnavailable as error:
        print(f"bench: the pinned binaries are unavailable: {error}", file=sys.stderr)
        return 1
    shutil.rmtree(args.work_dir, ignore_errors=True)
    args.work_dir.mkdir(parents=True)
    helper = bin_dir / "aws_signing_helper"
    scale = _scaled(QUICK if args.quick else FULL, args.scale)
    started = time.monotonic()
    results: list[FigureResult] = []
    aws = AwsStandIns(args.work_dir / "aws")
    kube = OperatorSession(args.work_dir, bin_dir, args.kubeconfig, tracemalloc=args.tracemalloc)
    try:
        ctx = Context(scale=scale, quick=args.quick, work=args.work_dir, aws=aws, helper=helper, bin_dir=bin_dir,
                      kube=kube)  # fmt: skip
        for number in figures:
            module = FIGURES[number]
            print(f"bench: {module.TITLE} ...", file=sys.stderr, flush=True)
            figure_started = time.monotonic()
            try:
                results.append(module.measure(ctx))
            except Exception as error:  # noqa: BLE001 - one figure failing must not lose the others
                traceback.print_exc(file=sys.stderr)
                message = " ".join(f"{type(error).__name__}: {error}".split())
                results.append(FigureResult(module.TITLE, error=message[:400]))
            print(
                f"bench: {module.TITLE}: {time.monotonic() - figure_started:.1f} s",
                file=sys.stderr,
                flush=True,
            )
    finally:
        kube.stop()
        aws.stop()
    elapsed = time.monotonic() - started
    settings = {
        "mode": "--quick" if args.quick else "full",
        "scale": ", ".join(f"{key}={value}" for key, value in vars(scale).items()),
        "duration": f"{elapsed:.0f} s",
    }
    print(render_text(results))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render_markdown(results, machine_description(helper), settings))
    for result in results:
        for name, image in result.images.items():
            (args.output.parent / name).write_bytes(image)
    print(f"\nbench: {elapsed:.0f} s; table written to {args.output}", file=sys.stderr)
    return 1 if any(result.error for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
