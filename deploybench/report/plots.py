"""reports/plots/*.png (matplotlib, Agg): accuracy vs latency with Pareto fronts, accuracy vs size,
throughput vs batch, top-1 vs data fraction."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..io import atomic_path  # noqa: E402
from .aggregate import backbone_label, ok_rows, p50_err  # noqa: E402
from .pareto import pareto_rows  # noqa: E402
from .view import View, color_index, panels  # noqa: E402

MARKERS = {"fp32": "o", "fp16": "s", "bf16": "D", "int8": "^"}


def _colors(labels) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10")
    return {b: cmap(i % 10) for b, i in color_index(labels).items()}


def _by(items, key) -> dict:
    out = defaultdict(list)
    for x in items:
        out[key(x)].append(x)
    return out


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


def _legend(ax, colors: dict, precisions) -> None:
    from matplotlib.lines import Line2D

    h = [Line2D([], [], ls="", marker="o", color=c, label=b) for b, c in colors.items()]
    h += [Line2D([], [], ls="", marker=MARKERS.get(p, "x"), color="gray", label=p) for p in sorted(precisions)]
    ax.legend(handles=h, fontsize=7, loc="lower right")


def _log(ax, axis: str = "x", base: float = 10) -> None:
    """Log scale with plain tick labels (0.5, 1, 2, 5 ...) instead of 5x10^-1."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    a = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log", base=base)
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    a.set_major_formatter(plain)
    if base == 10:
        a.set_minor_locator(LogLocator(subs=(2, 5)))
        a.set_minor_formatter(plain)
    else:
        a.set_minor_formatter(NullFormatter())


def accuracy_vs_latency(view: View, path: Path) -> Path:
    devs, tables = view.plot_devices, view.plot_tables()
    colors = _colors(backbone_label(c) for t in tables for c in t["configs"])
    fig, axes = plt.subplots(1, len(devs), figsize=(6.5 * len(devs), 4.8), squeeze=False, sharey=True)
    for ax, (fp, name) in zip(axes[0], devs.items()):
        for t in (t for t in tables if t["device_fingerprint"] == fp):
            pts = [c for c in t["configs"] if c.get("latency_ms_p50") and c.get("top1_mean") is not None]
            for (bb, pr), cs in _by(pts, lambda c: (backbone_label(c), c["precision"])).items():
                err = [p50_err(c) for c in cs]
                ax.errorbar([c["latency_ms_p50"] for c in cs], [c["top1_mean"] for c in cs], fmt="none",
                            xerr=[[e[0] for e in err], [e[1] for e in err]], ecolor=colors[bb], elinewidth=0.8,
                            alpha=0.6)
                ax.scatter([c["latency_ms_p50"] for c in cs], [c["top1_mean"] for c in cs], color=colors[bb],
                           marker=MARKERS.get(pr, "x"), s=42,
                           edgecolors=["black" if c["pareto"] else "none" for c in cs])
            front = pareto_rows(pts, "top1_mean", "latency_ms_p50")
            ax.step([c["latency_ms_p50"] for c in front], [c["top1_mean"] for c in front], where="post",
                    color="black", lw=1, alpha=0.6)
            if len(tables) > len(devs) and front:
                ax.annotate(t["dataset"], (front[-1]["latency_ms_p50"], front[-1]["top1_mean"]), fontsize=8,
                            xytext=(0, 8), textcoords="offset points", ha="right", color="dimgray")
        _log(ax)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("p50 latency, batch 1 (ms, log)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("top-1 (%)")
    _legend(axes[0][-1], colors, {c["precision"] for t in tables for c in t["configs"]})
    fig.suptitle("Accuracy vs latency (black line: Pareto front; outlined: on the front; bars: 95 % CI of p50)",
                 fontsize=11)
    return _save(fig, path)


def accuracy_vs_size(view: View, path: Path) -> Path:
    tables = view.plot_tables()
    cs = [c for t in tables for c in t["configs"] if c.get("size_mb") and c.get("top1_mean") is not None]
    colors = _colors(backbone_label(c) for c in cs)
    fig, ax = plt.subplots(figsize=(6.5, 4.8))
    for (bb, pr), g in _by(cs, lambda c: (backbone_label(c), c["precision"])).items():
        ax.scatter([c["size_mb"] for c in g], [c["top1_mean"] for c in g], color=colors[bb],
                   marker=MARKERS.get(pr, "x"), s=42, alpha=0.8)
    for ds, g in _by(cs, lambda c: c["dataset"]).items():
        front = pareto_rows(g, "top1_mean", "size_mb")
        ax.step([c["size_mb"] for c in front], [c["top1_mean"] for c in front], where="post", color="black", lw=1,
                alpha=0.6)
        ax.annotate(ds, (front[-1]["size_mb"], front[-1]["top1_mean"]), fontsize=8, xytext=(0, 8), ha="right",
                    textcoords="offset points", color="dimgray")
    ax.set(xlabel="artifact size (MB)", ylabel="top-1 (%)", title="Accuracy vs size (black line: Pareto front)")
    ax.grid(alpha=0.3)
    _legend(ax, colors, {c["precision"] for c in cs})
    return _save(fig, path)


def throughput_vs_batch(view: View, path: Path) -> Path:
    devs, lines = view.plot_devices, view.throughput
    colors = _colors(ln.key[1] for ln in lines)
    styles = {rt: ls for rt, ls in zip(sorted({ln.key[2] for ln in lines}), ["-", "--", ":", "-.", (0, (5, 1))] * 3)}
    fig, axes = plt.subplots(1, len(devs), figsize=(6.5 * len(devs), 4.8), squeeze=False, sharey=True)
    for ax, (fp, name) in zip(axes[0], devs.items()):
        for ln in lines:
            f, bb, rt, pr = ln.key
            if f != fp:
                continue
            ax.plot(ln.x, ln.y, color=colors[bb], ls=styles[rt],
                    marker=MARKERS.get(pr, "x"), ms=5, lw=1.2, label=f"{bb} {rt} {pr}")
        _log(ax, "x", base=2)
        _log(ax, "y")
        ax.set(title=name, xlabel="batch size")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("throughput (img/s, log)")
    if axes[0][-1].get_legend_handles_labels()[0]:
        axes[0][-1].legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.suptitle("Throughput vs batch size", fontsize=11)
    return _save(fig, path)


def top1_vs_fraction(view: View, path: Path) -> Path:
    lines = view.fractions
    colors, by_ds = _colors(ln.key[1] for ln in lines), panels(lines)
    fig, axes = plt.subplots(1, len(by_ds), figsize=(6 * len(by_ds), 4.5), squeeze=False)
    for ax, (ds, ds_lines) in zip(axes[0], by_ds.items()):
        for ln in ds_lines:
            ax.errorbar(ln.x, ln.y, yerr=ln.err, color=colors[ln.key[1]], marker="o", capsize=3, label=ln.key[1])
        ax.set(title=ds, xlabel="fraction of training data", ylabel="top-1 (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Top-1 vs data fraction (torch fp32, mean ± std over seeds)", fontsize=11)
    return _save(fig, path)


def write_plots(view: View, out_dir: Path) -> dict[str, Path]:
    """All plots that the data supports (report.view.build's view); returns {name: path}."""
    out_dir = Path(out_dir)
    if not ok_rows(view.rows):
        return {}
    paths = {"accuracy_vs_latency": accuracy_vs_latency(view, out_dir / "accuracy_vs_latency.png"),
             "accuracy_vs_size": accuracy_vs_size(view, out_dir / "accuracy_vs_size.png"),
             "throughput_vs_batch": throughput_vs_batch(view, out_dir / "throughput_vs_batch.png")}
    if view.fractions:
        paths["top1_vs_fraction"] = top1_vs_fraction(view, out_dir / "top1_vs_fraction.png")
    else:   # no stale plot from an earlier, multi-fraction report
        (out_dir / "top1_vs_fraction.png").unlink(missing_ok=True)
    return paths
