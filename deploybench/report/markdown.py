"""reports/report.md: rankings per device, flags, skipped/failed rows, precision deltas, tiers, constraint picks."""
from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Optional

from .aggregate import backbone_label, configs, faster_text, ok_rows, order_text, resolved, tiers
from .fmt import table
from .paper import markdown_section as paper_section
from .int8 import int8_markdown
from .profile import profile_markdown
from .select import ci_text
from .view import View, build, config_text, device_title, fixed as _f, flag_text, pick_text, short as _g, top1_text


def _ranking(t: dict) -> str:
    body = []
    cs = t["configs"]
    for c in cs:
        tp = f"{_g(c['throughput_ips'])} (bs {c['throughput_batch']})" if c.get("throughput_ips") else "–"
        body.append([c["index"], config_text(c, c["extra"]), {True: "yes", False: "no"}.get(c.get("pretrained"), "?"),
                     c["runtime"], c.get("artifact") or c.get("format") or "–", c["precision"], top1_text(c),
                     _f(c.get("top1_delta"), sign=True), _g(c.get("latency_ms_p50")), ci_text(c),
                     faster_text(c, lambda o: f"#{o['index']}"), _g(c.get("latency_ms_p99")), tp,
                     _f(c.get("size_mb")), _g(c["mem_mb"]), "★" if c.get("pareto") else "", "; ".join(c["flags"])])
    head = ["#", "backbone", "pretrained", "runtime", "artifact", "precision", "top-1 %", "Δ pt", "p50 ms",
            "p50 95 % CI", "next faster (p50 ratio, 95 % CI)", "p99 ms", "img/s", "size MB", "peak mem MB",
            "Pareto", "flags"]
    seeds = max(len(c["seeds"]) for c in cs)
    batch = {c["latency_batch"] for c in cs}
    note = (f"*{t['dataset']}, fraction {t['fraction']:g}; top-1 mean ± std over {seeds} seed(s); latency at batch "
            f"{', '.join(map(str, sorted(batch)))}, its 95 % CI spanning the row's executions (and seeds); "
            "★ = Pareto-optimal (top-1 vs p50) on this device. Next faster: how much faster the row with the next "
            "lower p50 is (and the nearest faster row of the same bench call), from the per-round ratios of the calls "
            "that measured both (geometric mean, t-interval on log ratios: drift cancels within a round); \"not "
            "resolved\" when that CI includes 1; rows of different calls compare by their absolute CIs only.*")
    return f"### Ranking: {t['dataset']} (fraction {t['fraction']:g})\n\n{note}\n\n{table(head, body)}" + (
        f"\n\n{_front(t['front'])}" if t["front"] else "")


def _front(front: list[dict]) -> str:
    """The Pareto front, fastest first, with how sure each latency step along it is."""
    steps = [f"#{front[0]['index']}"] + [f"#{b['index']} ({order_text(a, b, '#' + str(a['index']))})"
                                         for a, b in zip(front, front[1:])]
    unresolved = sum(not resolved(a, b) for a, b in zip(front, front[1:]))
    return f"Pareto front, fastest first: {' → '.join(steps)}" + (
        f" — {unresolved} of its {len(front) - 1} latency step(s) not resolved." if unresolved else
        " — every latency step resolved." if len(front) > 1 else "")


def _device_section(view: View, fp, name: str) -> str:
    parts = [f"## Device: {device_title(fp, name)}"]
    parts += [_ranking(t) for t in view.tables if t["device_fingerprint"] == fp]
    parts.append("### Flagged\n\n" + ("\n".join(f"- {flag_text(t, c)}" for t, c in view.flagged(fp))
                                       or "Nothing flagged."))
    bad = [r for r in view.rows if r.get("device_fingerprint") == fp and r.get("status") != "ok"]
    by_reason: dict[tuple, list[dict]] = defaultdict(list)
    for r in bad:
        by_reason[(r.get("status"), r.get("runtime"), r.get("precision"), r.get("status_reason"))].append(r)
    body = [[st, rt, pr, len(rs), ", ".join(sorted({r.get("backbone") or "?" for r in rs})),
             ", ".join(sorted({str(r.get("batch_size")) for r in rs})), reason or "–"]
            for (st, rt, pr, reason), rs in sorted(by_reason.items(), key=lambda kv: tuple(map(str, kv[0])))]
    parts.append("### Skipped and failed\n\n" + (
        table(["status", "runtime", "precision", "rows", "backbones", "batch", "reason"], body) if body else "None."))
    return "\n\n".join(parts)


def _precision_deltas(rows: list[dict]) -> str:
    deltas: dict[tuple, list[float]] = defaultdict(list)
    ok = ok_rows(rows)
    smallest = min((r["batch_size"] for r in ok if r.get("batch_size") is not None), default=None)
    for r in ok:   # one batch size only, so a config's accuracy is counted once per run and device
        if r.get("top1_delta_vs_torch_fp32") is not None and r.get("batch_size") == smallest:
            deltas[(r.get("runtime"), r.get("precision"))].append(r["top1_delta_vs_torch_fp32"])
    body = [[rt, pr, len(v), _f(statistics.fmean(v), sign=True), _f(min(v), sign=True), _f(max(v), sign=True)]
            for (rt, pr), v in sorted(deltas.items(), key=lambda kv: tuple(map(str, kv[0])))]
    head = ["runtime", "precision", "rows", "mean Δ pt", "worst Δ pt", "best Δ pt"]
    return ("## Accuracy delta per precision\n\n*top-1 points vs torch fp32 of the same run, over all rows "
            "(devices, seeds) at the smallest batch.*\n\n" + (table(head, body) if body else "No deltas measured."))


def _tiers(rows: list[dict]) -> str:
    t = tiers(rows)
    body = [[dom, x["tier"] or "–", x["backbone"], _f(x["top1"]), x["datasets"]] for dom, xs in t.items() for x in xs]
    return ("## Best / Better / Good\n\n*Backbones ranked by mean top-1 (torch fp32, largest data fraction, mean "
            "over seeds then datasets): rank 1 = Best, 2 = Better, 3 = Good.*\n\n"
            + (table(["domain", "tier", "backbone", "top-1 %", "datasets"], body) if body else "No accuracy yet."))


def _fractions(view: View) -> Optional[str]:
    if not view.fractions:
        return None
    fracs = sorted({f for ln in view.fractions for f in ln.x})
    body = [[*ln.key] + [_f(dict(zip(ln.x, ln.y)).get(f)) for f in fracs] for ln in view.fractions]
    return ("## Top-1 vs data fraction\n\n*torch fp32 top-1 %, mean over seeds.*\n\n"
            + table(["dataset", "backbone"] + [f"f={f:g}" for f in fracs], body))


def _choices(view: View) -> str:
    lines = ["## Best choice under constraints", "",
             "*Single-stream (batch 1) configurations on the largest data fraction, top-1 averaged over seeds; "
             "best = highest top-1, then lowest p50.*", ""]
    for fp, name, picks in view.picks:
        lines += [f"### {device_title(fp, name)}", ""] + [f"- {what}: {pick_text(c)}" for what, c in picks] + [""]
    return "\n".join(lines).rstrip()


def _side_by_side(rows: list[dict], devs: dict) -> Optional[str]:
    if len(devs) < 2:
        return None
    cells: dict[tuple, dict] = {}
    for c in configs(rows):
        key = (c["dataset"], c["fraction"], backbone_label(c), c["runtime"], c["artifact"], c["precision"],
               c.get("threads"), (c.get("setup") or "").rsplit("-", 1)[-1])
        cells.setdefault(key, {})[c["device_fingerprint"]] = c
    head = ["dataset", "fraction", "backbone", "runtime", "artifact", "precision", "threads", "setup"] + \
        [f"{n} p50 ms / top-1" for n in devs.values()]
    body = [[*map(lambda x: f"{x:g}" if isinstance(x, float) else x, k)] +
            [f"{_g(v[fp].get('latency_ms_p50'))} / {_f(v[fp].get('top1_mean'))}" if fp in v else "–" for fp in devs]
            for k, v in sorted(cells.items(), key=lambda kv: tuple(map(str, kv[0])))]
    return "## Devices side by side\n\n" + table(head, body)


def render_markdown(rows: list[dict], cfg=None, noisy_cv: Optional[float] = None) -> str:
    """The whole report as Markdown text."""
    return markdown(build(rows, cfg, noisy_cv))


def markdown(view: View) -> str:
    """The whole report of `view` as Markdown text."""
    rows, devs = view.rows, view.devices
    head = [f"# deploybench report: {view.name}", "", f"Generated {view.generated} from {view.summary}.", ""]
    if not rows:
        return "\n".join(head + ["There are no results yet: run `deploybench bench` first.", ""])
    head += ["Devices: " + "; ".join(device_title(fp, n) for fp, n in devs.items()), "",
             "Top-1 is % on the test split through the artifact itself; Δ is top-1 points vs torch fp32 of the same "
             "run; p50/p99 are single-stream (batch 1) latencies; img/s is throughput at the largest batch measured."
             + (" Each device is ranked on its own." if len(devs) > 1 else "")]
    sections = [_device_section(view, fp, n) for fp, n in devs.items()]
    sections += [_precision_deltas(rows), _tiers(rows), _fractions(view), _choices(view), _side_by_side(rows, devs)]
    sections.append(paper_section(rows))
    sections += [int8_markdown(rows, view.cfg), profile_markdown(rows, view.cfg)]
    return "\n".join(head) + "\n\n" + "\n\n".join(s for s in sections if s) + "\n"
