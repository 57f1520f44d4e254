"""Figure 6's scaling curve as a PNG: the operator's RSS and the time to all Ready against the bindings.

matplotlib comes with the dev kit's `bench` extra (hack/pyproject.toml, installed by `make venv`); it is
no dependency of the product. Drawn with the Agg backend: no display needed.
"""

from __future__ import annotations

import io


def scaling_png(points: list[tuple[int, float, float]], rss_goal_mib: float) -> bytes:
    """A PNG of (bindings, RSS in MiB, seconds to all Ready) points: RSS on the left axis (with its goal as a
    dotted line), time on the right."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    bindings = [point[0] for point in points]
    figure, rss_axis = pyplot.subplots(figsize=(7, 4), dpi=100)
    try:
        rss_axis.plot(bindings, [point[1] for point in points], "o-", color="tab:blue", label="operator RSS")
        rss_axis.axhline(rss_goal_mib, color="tab:blue", linestyle=":", linewidth=1, label=f"goal {rss_goal_mib:g} MiB")
        rss_axis.set_xlabel("bindings")
        rss_axis.set_ylabel("RSS (MiB)", color="tab:blue")
        rss_axis.set_ylim(bottom=0)
        time_axis = rss_axis.twinx()
        time_axis.plot(bindings, [point[2] for point in points], "s--", color="tab:orange",
                       label="time to all Ready (step)")  # fmt: skip
        time_axis.set_ylabel("time to all Ready, per step (s)", color="tab:orange")
        time_axis.set_ylim(bottom=0)
        lines = rss_axis.get_legend_handles_labels()
        more = time_axis.get_legend_handles_labels()
        rss_axis.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", fontsize="small")
        rss_axis.set_title("rolesanywhere-operator at scale (bench figure 6)")
        figure.tight_layout()
        out = io.BytesIO()
        figure.savefig(out, format="png")
        return out.getvalue()
    finally:
        pyplot.close(figure)
