"""Our top-1 beside the seed study's own figures (deploybench/paper), for Markdown and HTML.

Ours: torch fp32 rows of pretrained runs (smallest batch), one top-1 per seed -> mean ± std, and the paper's
metric, the best seed chosen on the test set (optimistic). A figure the paper's tables give twice with
different values is shown with both values, flagged.
"""
from __future__ import annotations

import html
import statistics
from collections import defaultdict
from typing import Optional

from .. import paper
from .fmt import table

NOTE = ("Paper: {cite}. Its figures are the best of three runs chosen on the test set, an optimistic metric; "
        "\"best of N\" applies the same rule to our seeds for a like-for-like comparison, while mean ± std is the "
        "estimate to rely on. Ours: torch fp32 top-1 on the test images the bench stage measured. The paper "
        "fine-tuned torchvision's ImageNet weights (WaveMix: its authors'); Δ = ours − paper, in points. The "
        "figures compare only under the paper's protocol (configs/paper.yaml) on its splits (`deploybench plan` "
        "checks the counts).")
HEAD = ["dataset", "backbone", "fraction", "seeds", "ours top-1 % (mean ± std)", "ours best of N (optimistic)",
        "paper top-1 % (best of 3, optimistic)", "Δ best", "Δ mean", "paper source"]


def _per_seed(rows: list[dict]) -> dict[tuple, dict[int, list[float]]]:
    ref = [r for r in rows if r.get("status") == "ok" and r.get("runtime") == "torch" and r.get("precision") == "fp32"
           and r.get("pretrained") is not False and r.get("top1") is not None]
    small = {}
    for r in ref:
        key = (r["backbone"], r["dataset"], r["fraction"])
        small[key] = min(small.get(key, r.get("batch_size") or 0), r.get("batch_size") or 0)
    out: dict[tuple, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in ref:
        key = (r["backbone"], r["dataset"], r["fraction"])
        if (r.get("batch_size") or 0) == small[key]:
            out[key][r.get("seed")].append(r["top1"])
    return out


def comparison(rows: list[dict]) -> list[dict]:
    """One dict per (backbone, dataset, fraction) of ours that the paper has a figure for."""
    out = []
    for (bb, ds, fr), by_seed in sorted(_per_seed(rows).items(), key=lambda kv: tuple(map(str, kv[0]))):
        figs = paper.figures(bb, ds, fr)
        if not figs:
            continue
        values: dict[float, list[str]] = defaultdict(list)
        for f in figs:
            values[f.top1].append(f.source)
        seeds = [statistics.fmean(v) for v in by_seed.values()]
        mean, best = statistics.fmean(seeds), max(seeds)
        out.append({"backbone": bb, "dataset": ds, "fraction": fr, "paper_backbone": paper.paper_backbone(bb),
                    "paper_dataset": paper.paper_dataset(ds), "seeds": len(seeds), "mean": mean,
                    "std": statistics.stdev(seeds) if len(seeds) > 1 else None, "best": best,
                    "paper": [(v, src) for v, src in values.items()], "disagree": len(values) > 1,
                    "delta_best": [best - v for v in values], "delta_mean": [mean - v for v in values]})
    return out


def _cells(c: dict) -> list[str]:
    both = " / ".join
    sources = [f"{', '.join(src)}" for _, src in c["paper"]]
    return [c["paper_dataset"], c["paper_backbone"], f"{c['fraction']:g}", str(c["seeds"]),
            f"{c['mean']:.2f}" + (f" ± {c['std']:.2f}" if c["std"] is not None else ""),
            f"{c['best']:.2f} (best of {c['seeds']})",
            both(f"{v:.2f}" for v, _ in c["paper"]) + (" ⚠" if c["disagree"] else ""),
            both(f"{d:+.2f}" for d in c["delta_best"]), both(f"{d:+.2f}" for d in c["delta_mean"]),
            both(sources) + (" — the paper's tables disagree: both shown" if c["disagree"] else "")]


def markdown_section(rows: list[dict]) -> Optional[str]:
    """"## Compared with the paper" (None when no run has a paper figure)."""
    comp = comparison(rows)
    if not comp:
        return None
    return (f"## Compared with the paper\n\n*{NOTE.format(cite=paper.CITATION)}*\n\n"
            + table(HEAD, [_cells(c) for c in comp]))


def html_section(rows: list[dict]) -> str:
    """The same as an HTML table ("" when no run has a paper figure)."""
    comp = comparison(rows)
    if not comp:
        return ""
    ths = "".join(f"<th>{html.escape(h)}</th>" for h in HEAD)
    trs = "".join("<tr>" + "".join(f'<td{" class=flag" if c["disagree"] and i >= 6 else ""}>{html.escape(x)}</td>'
                                   for i, x in enumerate(_cells(c))) + "</tr>" for c in comp)
    return (f"<h2>Compared with the paper</h2><p class=meta>{html.escape(NOTE.format(cite=paper.CITATION))}</p>"
            f'<div class="wrap"><table><thead><tr>{ths}</tr></thead><tbody>{trs}</tbody></table></div>')
