"""Aggregate result rows over seeds, per deployable configuration, and the Best/Better/Good backbone tiers.

"The same configuration" is defined once, here (`GROUP`, `same_config`), and used by the report, `select` and
the Pareto fronts: rows that agree on every GROUP field are seeds of one configuration and only those are pooled.
`setup` is the run id without its seed (run ids hash the training setup apart from the seed, records.RunSpec).
top1/top5 are percentages; `top1_delta_vs_torch_fp32` is in points.
"""
from __future__ import annotations

import json
import math
import re
import statistics
from collections import defaultdict
from typing import Iterable, Optional

from ..bench.stats import Ratio, ratio_ci
from ..records import ACC_DROP_PT

GROUP = ("device_fingerprint", "backbone", "pretrained", "setup", "dataset", "fraction", "image_size",
         "accuracy_images", "artifact", "recipe", "format", "runtime", "precision", "threads", "batch_size")
CONFIG = tuple(k for k in GROUP if k != "batch_size")
DISTINGUISH = ("threads", "setup", "image_size", "accuracy_images", "recipe", "fraction")   # said when they differ
TIERS = ("Best", "Better", "Good")
PARITY_MIN_AGREE = 0.99    # flag artifacts whose top-1 agrees with torch fp32 on fewer images than this
CI_MAX_REL = 0.10          # flag a p50 whose 95 % CI reaches further than this fraction of it


def ok_rows(rows: Iterable[dict]) -> list[dict]:
    return [r for r in rows if r.get("status") == "ok"]


def _vals(rows: list[dict], col: str) -> list[float]:
    return [r[col] for r in rows if r.get(col) is not None]


def _mean(xs: list[float]) -> Optional[float]:
    return statistics.fmean(xs) if xs else None


def _median(xs: list[float]) -> Optional[float]:
    return statistics.median(xs) if xs else None


def _std(xs: list[float]) -> Optional[float]:
    return statistics.stdev(xs) if len(xs) > 1 else None


def _first(rows: list[dict], col: str):
    return next((r[col] for r in rows if r.get(col) is not None), None)


def setup(r: dict) -> Optional[str]:
    """The run id without its seed part: what the seeds of one training setup share."""
    rid, seed = r.get("run_id"), r.get("seed")
    if rid is None or seed is None:
        return r.get("setup", rid)
    return re.sub(rf"-s{int(seed)}(?=-[0-9a-f]+$)", "", rid)


def same_config(r: dict, fields: tuple = GROUP) -> tuple:
    """The key under which rows are the same configuration (seeds pooled, nothing else)."""
    return tuple(setup(r) if k == "setup" else r.get(k) for k in fields)


def executions(x: dict) -> list[tuple[str, tuple]]:
    """[(bench call, per-round execution p50s)] of a row, or of a pooled config (one entry per seed row)."""
    if "paired" in x:
        return x["paired"]
    call, p50s = x.get("bench_call"), x.get("latency_ms_execution_p50s")
    if isinstance(p50s, str):
        p50s = json.loads(p50s)
    return [(call, tuple(p50s))] if call and p50s else []


def paired_ratio(a: dict, b: dict) -> Optional[Ratio]:
    """p50 of b over p50 of a from the rounds of every bench call that measured both, at the same batch size and
    with the same number of executions (stats.ratio_ci); None when no call did."""
    if a.get("latency_batch", a.get("batch_size")) != b.get("latency_batch", b.get("batch_size")):
        return None
    mine = dict(executions(a))
    pa, pb = [], []
    for call, theirs in executions(b):
        if call in mine and len(mine[call]) == len(theirs):
            pa += mine[call]
            pb += theirs
    return ratio_ci(pa, pb) if pa else None


def order_text(fast: dict, slow: dict, name: str = "") -> str:
    """How sure it is that `fast` beats `slow` on p50: paired ratio with its CI, else whether the absolute CIs
    overlap. e.g. "#3 1.32× faster [1.21, 1.44]" or "#3 1.03× faster [0.95, 1.12], not resolved" ("slower" when
    the paired rounds put `fast` behind)."""
    r = paired_ratio(fast, slow)
    who = f"{name} " if name else ""
    if r is None:
        return f"{who}faster (other bench call: " + ("absolute CIs apart)" if _apart(fast, slow) else
                                                       "by p50 only, CIs overlap)")
    way, x, lo, hi = ("faster", r.ratio, r.low, r.high) if r.ratio >= 1 else \
        ("slower", 1 / r.ratio, r.high and 1 / r.high, r.low and 1 / r.low)   # paired rounds can disagree with p50s
    if lo is None:
        return f"{who}{x:.2f}× {way}, one round: not resolved"
    return f"{who}{x:.2f}× {way} [{lo:.2f}, {hi:.2f}]" + ("" if r.resolved else ", not resolved")


def faster_text(c: dict, name) -> str:
    """Table cell: c vs its next faster config, plus the nearest faster one measured in the same call when that is
    another (`name` labels a config)."""
    nf, paired = c.get("next_faster"), c.get("next_faster_paired")
    if nf is None:
        return "fastest"
    text = order_text(nf, c, name(nf))
    return text if paired is None or paired is nf else f"{text}; same call: {order_text(paired, c, name(paired))}"


def resolved(fast: dict, slow: dict) -> bool:
    """True when `fast` is faster than `slow` beyond doubt: paired CI of the ratio above 1, or (never measured
    together) absolute p50 CIs apart."""
    r = paired_ratio(fast, slow)
    return r.resolved and r.ratio > 1 if r is not None else _apart(fast, slow)


def _apart(fast: dict, slow: dict) -> bool:
    return (fast.get("latency_ms_p50_ci_high") or math.inf) < (slow.get("latency_ms_p50_ci_low") or 0)


def distinguish(items: list[dict], shown: tuple = ("backbone", "pretrained", "runtime", "artifact", "precision")
                ) -> list[str]:
    """Per item, what sets it apart from items that look the same in the `shown` columns (threads, setup, image
    size, accuracy images, recipe, fraction), e.g. "2 threads"; "" when nothing does."""
    twins: dict[tuple, list[dict]] = defaultdict(list)
    for c in items:
        twins[tuple(c.get(k) for k in shown)].append(c)
    out = []
    for c in items:
        group = twins[tuple(c.get(k) for k in shown)]
        out.append(", ".join(_part(k, c) for k in DISTINGUISH if len({_part(k, g) for g in group}) > 1))
    return out


def _part(k: str, c: dict) -> str:
    """How a table says c's value of DISTINGUISH field k."""
    v = setup(c) if k == "setup" else c.get(k)
    if v is None:
        return f"{k} ?"
    return {"threads": f"{v} thread{'s' if v != 1 else ''}", "setup": f"setup {str(v).rsplit('-', 1)[-1]}",
            "image_size": f"{v} px", "accuracy_images": f"top-1 on {v} images",
            "fraction": f"fraction {v:g}" if isinstance(v, (int, float)) else str(v)}.get(k, str(v))


def _mean_se(ses: list[float]) -> Optional[float]:
    """Standard error of a mean of independent estimates with standard errors `ses` (seeds' paired top-1 Δs)."""
    return math.sqrt(sum(s * s for s in ses)) / len(ses) if ses else None


def _summary(rows: list[dict]) -> dict:
    """Seed statistics of one group of rows (same configuration, different seeds/run ids)."""
    top1 = _vals(rows, "top1")
    return {
        "device": _first(rows, "device"), "domain": _first(rows, "domain"), "pretrained": _first(rows, "pretrained"),
        "artifact": _first(rows, "artifact"), "threads": _first(rows, "threads"),
        "seeds": sorted({r["seed"] for r in rows if r.get("seed") is not None}), "n": len(rows),
        "top1_mean": _mean(top1), "top1_std": _std(top1), "top1_best": max(top1) if top1 else None,
        "top5_mean": _mean(_vals(rows, "top5")),
        "top1_delta": _mean(_vals(rows, "top1_delta_vs_torch_fp32")),
        "top1_delta_se": _mean_se(_vals(rows, "top1_delta_se")),
        "latency_ms_p50": _median(_vals(rows, "latency_ms_p50")),
        "latency_ms_p99": _median(_vals(rows, "latency_ms_p99")),
        "latency_ms_p50_ci_low": min(_vals(rows, "latency_ms_p50_ci_low"), default=None),    # union over seeds
        "latency_ms_p50_ci_high": max(_vals(rows, "latency_ms_p50_ci_high"), default=None),
        "latency_cv": max(_vals(rows, "latency_cv"), default=None),
        "throughput_ips": _median(_vals(rows, "throughput_ips")),
        "size_mb": _mean(_vals(rows, "size_mb")),
        "peak_host_mem_mb": max(_vals(rows, "peak_host_mem_mb"), default=None),
        "peak_device_mem_mb": max(_vals(rows, "peak_device_mem_mb"), default=None),
        "parity_max_rel_err": max(_vals(rows, "parity_max_rel_err"), default=None),
        "parity_top1_agree": min(_vals(rows, "parity_top1_agree"), default=None),
        "noisy": any(bool(r.get("noisy")) for r in rows),
        "accuracy_flag": next((r["accuracy_flag"] for r in rows if r.get("accuracy_flag")), None),
        "params_m": _first(rows, "params_m"), "gmacs": _first(rows, "gmacs"),
        "paired": [e for r in rows for e in executions(r)],
    }


def _groups(rows: Iterable[dict], key: tuple) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = defaultdict(list)
    for r in ok_rows(rows):
        out[same_config(r, key)].append(r)
    return out


def aggregate(rows: Iterable[dict]) -> list[dict]:
    """One dict per configuration (GROUP) over seeds (ok rows)."""
    return [dict(zip(GROUP, k)) | _summary(g) for k, g in _groups(rows, GROUP).items()]


def configs(rows: Iterable[dict]) -> list[dict]:
    """One dict per deployable configuration (GROUP without batch): accuracy and latency from the smallest
    batch (single-stream, normally 1), throughput from the largest; sorted by top-1 mean desc, p50 asc."""
    out = []
    for k, g in _groups(rows, CONFIG).items():
        batches = sorted({r["batch_size"] for r in g if r.get("batch_size") is not None})
        small = [r for r in g if r.get("batch_size") == batches[0]] if batches else g
        large = [r for r in g if r.get("batch_size") == batches[-1]] if batches else g
        c = dict(zip(CONFIG, k)) | _summary(small)
        if not _vals(small, "top1"):   # accuracy measured at another batch only
            c |= {k2: v for k2, v in _summary(g).items() if k2.startswith("top")}
        c.update(latency_batch=batches[0] if batches else None, throughput_batch=batches[-1] if batches else None,
                 throughput_ips=_median(_vals(large, "throughput_ips")), batches=batches)
        out.append(c)
    return sorted(out, key=rank_key)


def rank_key(c: dict, top1: str = "top1_mean") -> tuple:
    """The ranking order of the report and `select`: highest top-1 first, then lowest p50 (unmeasured last)."""
    acc, p50 = c.get(top1), c.get("latency_ms_p50")
    return (acc is None, -(acc or 0.0), p50 is None, p50 or 0.0)


def flags(c: dict, noisy_cv: float = 0.15) -> list[str]:
    """Why a row/config deserves a second look: accuracy drop, noisy latency, parity problems."""
    out = []
    delta = c.get("top1_delta", c.get("top1_delta_vs_torch_fp32"))
    if delta is not None and delta < -ACC_DROP_PT:
        se = c.get("top1_delta_se")
        out.append(f"top-1 {delta:+.2f}" + (f" ± {se:.2f}" if se is not None else "") + " pt vs torch fp32")
    elif isinstance(c.get("accuracy_flag"), str):
        out.append(c["accuracy_flag"])
    cv = c.get("latency_cv")
    if c.get("noisy") or (cv is not None and cv > noisy_cv):
        out.append(f"noisy latency (CV {cv:.2f})" if cv is not None else "noisy latency")
    p50, (below, above) = c.get("latency_ms_p50"), p50_err(c)
    if p50 and max(below, above) > CI_MAX_REL * p50:
        out.append(f"p50 uncertain (95 % CI {p50 - below:.3g}-{p50 + above:.3g} ms)")
    agree = c.get("parity_top1_agree")
    if agree is not None and agree < PARITY_MIN_AGREE:
        out.append(f"parity: top-1 agrees on {agree:.1%} of images")
    return out


def p50_err(c: dict) -> tuple[float, float]:
    """(below, above) p50 to the ends of its 95 % CI, for error bars; (0, 0) when the CI is unknown."""
    p50, lo, hi = c.get("latency_ms_p50"), c.get("latency_ms_p50_ci_low"), c.get("latency_ms_p50_ci_high")
    if p50 is None or lo is None or hi is None:
        return 0.0, 0.0
    return max(0.0, p50 - lo), max(0.0, hi - p50)


def int8_pairs(rows: list[dict]) -> list[tuple[dict, dict]]:
    """(INT8 row, fp32 row) for each INT8 row that has an fp32 row of the same run, runtime, device, batch size
    and threads (of the same format where there is one)."""
    pairs = []
    for r8 in rows:
        if r8.get("precision") != "int8":
            continue
        same = [r for r in rows if r.get("precision") == "fp32" and all(
            r.get(k) == r8.get(k) for k in ("run_id", "runtime", "device_fingerprint", "batch_size", "threads"))]
        same.sort(key=lambda r: r.get("format") != r8.get("format"))
        if same:
            pairs.append((r8, same[0]))
    return pairs


def backbone_label(r: dict) -> str:
    return r["backbone"] if r.get("pretrained") in (True, None) else f"{r['backbone']} (scratch)"


def tiers(rows: Iterable[dict]) -> dict[str, list[dict]]:
    """Best/Better/Good backbones per domain and overall.

    Each backbone (pretrained and from-scratch counted apart) is scored by its mean top-1 over seeds on the
    largest data fraction, measured through torch fp32 where such rows exist (else every ok row), averaged over
    the datasets of the domain (overall: over all datasets, each weighted equally). Rank 1 = Best, 2 = Better,
    3 = Good; the rest are listed untiered. Returns {domain|"overall": [{tier, backbone, top1, datasets}]}.
    """
    ok = ok_rows(rows)
    ref = [r for r in ok if r.get("runtime") == "torch" and r.get("precision") == "fp32"] or ok
    ref = [r for r in ref if r.get("top1") is not None]
    per_ds: dict[tuple, list[float]] = defaultdict(list)
    domain_of: dict[str, str] = {}
    for ds in {r["dataset"] for r in ref}:
        rs = [r for r in ref if r["dataset"] == ds]
        fmax = max((r["fraction"] for r in rs if r.get("fraction") is not None), default=None)
        for r in rs:
            if r.get("fraction") == fmax:
                per_ds[(ds, backbone_label(r))].append(r["top1"])
                domain_of[ds] = r.get("domain") or "unknown"
    scope: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for (ds, bb), v in per_ds.items():
        m = statistics.fmean(v)
        scope[domain_of[ds]][bb].append(m)
        scope["overall"][bb].append(m)
    out = {}
    for dom, by_bb in scope.items():
        ranked = sorted(((statistics.fmean(v), bb, len(v)) for bb, v in by_bb.items()), key=lambda t: (-t[0], t[1]))
        out[dom] = [{"tier": TIERS[i] if i < len(TIERS) else "", "backbone": bb, "top1": m, "datasets": n}
                    for i, (m, bb, n) in enumerate(ranked)]
    return dict(sorted(out.items(), key=lambda kv: (kv[0] == "overall", kv[0])))


def devices(rows: Iterable[dict]) -> dict[str, str]:
    """{device_fingerprint: device name} over all rows, sorted by name."""
    seen = {r.get("device_fingerprint"): r.get("device") or "unknown device" for r in rows}
    return dict(sorted(seen.items(), key=lambda kv: (kv[1], str(kv[0]))))


def ranked(rows: Iterable[dict]) -> list[dict]:
    """Ranking tables, one per (device fingerprint, dataset, fraction) — fingerprints never mixed — with each
    config marked `pareto` when on the front of top-1 mean vs single-stream p50 within its table (`front`, fastest
    first), `next_faster`: the config of the table with the next lower p50 (None for the fastest), and
    `next_faster_paired`: the nearest faster config measured in the same bench call (None when there is none)."""
    from .pareto import pareto_rows

    cs = configs(rows)
    out = []
    for fp, ds, fr in sorted({(c["device_fingerprint"], c["dataset"], c["fraction"]) for c in cs},
                             key=lambda k: tuple(str(x) for x in k)):
        items = [c for c in cs if (c["device_fingerprint"], c["dataset"], c["fraction"]) == (fp, ds, fr)]
        front = pareto_rows(items, "top1_mean", "latency_ms_p50")
        for c in items:
            c["pareto"] = any(c is f for f in front)
            p50 = c.get("latency_ms_p50") or 0
            faster = sorted((o for o in items if (o.get("latency_ms_p50") or math.inf) < p50),
                            key=lambda o: -o["latency_ms_p50"])
            c["next_faster"] = faster[0] if faster else None
            c["next_faster_paired"] = next((o for o in faster if paired_ratio(o, c) is not None), None)
        out.append({"device_fingerprint": fp, "device": items[0]["device"], "dataset": ds, "fraction": fr,
                    "configs": items, "front": front})
    return out


def seed_mean_rows(rows: Iterable[dict]) -> list[dict]:
    """aggregate() groups as result-row-like dicts (top1 = mean over seeds, status ok), for select()."""
    out = []
    for g in aggregate(rows):
        out.append(g | {"top1": g["top1_mean"], "top5": g["top5_mean"], "top1_delta_vs_torch_fp32": g["top1_delta"],
                        "status": "ok", "seed": None,
                        "run_id": f"{g['setup']} ({g['n']} seed(s))"})
    return out


def throughput_series(rows: Iterable[dict]) -> dict[tuple, dict[int, list[float]]]:
    """(device_fingerprint, backbone label, runtime, precision) -> batch size -> throughputs (one per seed group)."""
    series: dict[tuple, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for g in aggregate(rows):
        if g.get("throughput_ips") and g.get("batch_size"):
            key = (g["device_fingerprint"], backbone_label(g), g["runtime"], g["precision"])
            series[key][g["batch_size"]].append(g["throughput_ips"])
    return series


def fraction_series(rows: Iterable[dict]) -> dict[tuple, dict[float, list[float]]]:
    """(dataset, backbone label) -> data fraction -> top-1 per seed, from torch fp32 rows (all rows when there
    are none) at their smallest batch size; empty when fewer than two fractions were run."""
    ok = [r for r in ok_rows(rows) if r.get("top1") is not None and r.get("fraction") is not None]
    if len({r["fraction"] for r in ok}) < 2:
        return {}
    ref = [r for r in ok if r.get("runtime") == "torch" and r.get("precision") == "fp32"] or ok
    small = min(r.get("batch_size") or 0 for r in ref)
    series: dict[tuple, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in ref:
        if (r.get("batch_size") or 0) == small:
            series[(r["dataset"], backbone_label(r))][r["fraction"]].append(r["top1"])
    return series

