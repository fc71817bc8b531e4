"""Constraint selection: which measured configurations fit, ranked, and why each other row is out."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Optional

from ..rows import Memory
from .aggregate import CONFIG, backbone_label, distinguish, order_text, rank_key, resolved, same_config

CANDIDATE_COLS = ("backbone", "dataset", "fraction", "seed", "runtime", "precision", "format", "batch_size",
                  "top1", "latency_ms_p50", "latency_ms_p50_ci_low", "latency_ms_p50_ci_high", "latency_ms_p99", "size_mb", "mem_mb", "throughput_ips",
                  "throughput_batch", "device", "device_fingerprint", "run_id", "artifact", "threads", "pretrained",
                  "bench_call")
TOP = 3   # candidates whose latency ordering `render` checks


def num(v: float) -> str:
    """Short human number: 12.3, 0.512, 1520."""
    return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"


def ci_text(r: dict, sep: str = "–") -> str:
    """The p50 95 % CI as "low<sep>high" ms, or `sep` alone when it was not measured."""
    lo, hi = r.get("latency_ms_p50_ci_low"), r.get("latency_ms_p50_ci_high")
    return f"{num(lo)}{sep}{num(hi)}" if lo is not None and hi is not None else sep


def mem_mb(r: dict) -> Optional[float]:
    """Peak memory that matters for the row: device memory where measured, else host memory."""
    return Memory(r.get("peak_host_mem_mb"), r.get("peak_device_mem_mb")).mb


def _label(r: dict) -> str:
    threads = f" {r['threads']} thread{'s' if r['threads'] > 1 else ''}" if r.get("threads") else ""
    return (f"{backbone_label(r) if r.get('backbone') else None} {r.get('runtime')} {r.get('artifact')} "
            f"{r.get('precision')} bs{r.get('batch_size')}{threads}")


@dataclass
class Selection:
    constraints: dict
    candidates: list[dict] = field(default_factory=list)   # fitting rows, best first (extra: mem_mb, throughput)
    excluded: list[dict] = field(default_factory=list)     # {"row": row, "reasons": [str, ...]}
    throughput_rows: int = 0                                # larger-batch rows folded into their batch-1 candidate

    @property
    def best(self) -> Optional[dict]:
        return self.candidates[0] if self.candidates else None

    def to_dict(self) -> dict:
        return {"constraints": self.constraints,
                "candidates": [{c: r.get(c) for c in CANDIDATE_COLS} for r in self.candidates],
                "excluded": [{"config": _label(e["row"]), "run_id": e["row"].get("run_id"),
                              "device": e["row"].get("device"), "reasons": e["reasons"]} for e in self.excluded]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    def _unresolved(self) -> list[str]:
        """Notes for neighbours among the top candidates whose latency ordering is not resolved."""
        out = []
        top = self.candidates[:TOP]
        for i, (a, b) in enumerate(zip(top, top[1:]), 1):
            if a.get("latency_ms_p50") is None or b.get("latency_ms_p50") is None:
                continue
            (fi, fast), (si, slow) = sorted(((i, a), (i + 1, b)), key=lambda t: t[1]["latency_ms_p50"])
            if not resolved(fast, slow):
                out.append(f"note: #{fi} vs #{si}: p50 ordering not resolved ({order_text(fast, slow, f'#{fi}')})")
        return out

    def render(self, max_excluded: int = 30) -> str:
        """Plain-text table of the ranked candidates, then the excluded rows with their reasons."""
        active = ", ".join(f"{k}={v}" for k, v in self.constraints.items() if v is not None) or "none"
        lines = [f"constraints: {active}"]
        if self.candidates:
            head = ("#", "backbone", "dataset", "seed", "runtime", "artifact", "prec", "top1 %", "p50 ms", "p50 CI",
                    "p99 ms", "MB", "mem MB", "img/s", "device")
            extra = distinguish(self.candidates, ("backbone", "pretrained", "dataset", "seed", "runtime", "artifact",
                                                  "precision", "device_fingerprint"))
            body = [(str(i), backbone_label(r) + (f", {x}" if x else "") if r.get("backbone") else "",
                     r.get("dataset") or "",
                     "" if r.get("seed") is None else str(r["seed"]),
                     r.get("runtime") or "", r.get("artifact") or "", r.get("precision") or "",
                     _fmt(r.get("top1")), _fmt(r.get("latency_ms_p50")),
                     ci_text(r, "-"),
                     *(_fmt(r.get(c)) for c in ("latency_ms_p99", "size_mb", "mem_mb", "throughput_ips")),
                     r.get("device") or "") for i, (r, x) in enumerate(zip(self.candidates, extra), 1)]
            widths = [max(len(x) for x in col) for col in zip(head, *body)]
            lines += ["  ".join(x.ljust(w) for x, w in zip(row, widths)).rstrip() for row in (head, *body)]
            limit = self.constraints.get("max_latency_ms")
            lines += [f"note: #{i} fits on its p50, but its 95 % CI reaches {num(r['latency_ms_p50_ci_high'])} ms "
                      f"> {num(limit)} ms: not resolved on this machine" for i, r in enumerate(self.candidates, 1)
                      if limit is not None and (r.get("latency_ms_p50_ci_high") or 0) > limit]
            lines += self._unresolved()
        else:
            lines.append("nothing fits these constraints")
        if self.excluded:
            lines.append(f"excluded ({len(self.excluded)}):")
            lines += [f"  {_label(e['row'])} [{e['row'].get('device')}]: {'; '.join(e['reasons'])}"
                      for e in self.excluded[:max_excluded]]
            if len(self.excluded) > max_excluded:
                lines.append(f"  ... and {len(self.excluded) - max_excluded} more (use --json)")
        if self.throughput_rows:
            lines.append(f"({self.throughput_rows} larger-batch rows counted as throughput of their batch-1 config)")
        return "\n".join(lines)


def _fmt(v) -> str:
    return "-" if v is None else num(v)


def _limits(r: dict, c: dict) -> list[str]:
    checks = [("max_latency_ms", "p50", r.get("latency_ms_p50"), "ms", ">"),
              ("max_p99_ms", "p99", r.get("latency_ms_p99"), "ms", ">"),
              ("max_size_mb", "size", r.get("size_mb"), "MB", ">"),
              ("max_mem_mb", "peak mem", mem_mb(r), "MB", ">"),
              ("min_top1", "top-1", r.get("top1"), "%", "<")]
    out = []
    for key, what, value, unit, op in checks:
        limit = c.get(key)
        if limit is None:
            continue
        if value is None:
            out.append(f"{what} not measured")
        elif (value > limit) if op == ">" else (value < limit):
            out.append(f"{what} {num(value)} {unit} {op} {num(limit)} {unit}")
    return out


def _filters(r: dict, c: dict) -> list[str]:
    out = []
    dev = c.get("device")
    if dev and dev != r.get("device_fingerprint") and dev.lower() not in (r.get("device") or "").lower():
        out.append(f"device {r.get('device')} is not {dev}")
    for key in ("runtime", "precision", "dataset"):
        if c.get(key) and r.get(key) != c[key]:
            out.append(f"{key} {r.get(key)} != {c[key]}")
    return out


def select(rows: list[dict], max_latency_ms: Optional[float] = None, max_p99_ms: Optional[float] = None,
           max_size_mb: Optional[float] = None, max_mem_mb: Optional[float] = None,
           min_top1: Optional[float] = None, device: Optional[str] = None, runtime: Optional[str] = None,
           precision: Optional[str] = None, dataset: Optional[str] = None) -> Selection:
    """Rank the configurations that meet every constraint (aggregate.rank_key: top-1 desc, then p50 asc).

    Latency constraints use single-stream rows: each configuration (aggregate.CONFIG, per run: seeds are not
    pooled here) is represented by its smallest-batch row (normally batch 1); its larger-batch rows only supply
    `throughput_ips`/`throughput_batch`. A representative without a batch-1 row fails latency constraints.
    """
    c = dict(max_latency_ms=max_latency_ms, max_p99_ms=max_p99_ms, max_size_mb=max_size_mb, max_mem_mb=max_mem_mb,
             min_top1=min_top1, device=device, runtime=runtime, precision=precision, dataset=dataset)
    sel = Selection(constraints=c)
    by_cfg: dict[tuple, list[dict]] = {}
    for r in rows:
        if r.get("status") != "ok":
            sel.excluded.append({"row": r, "reasons": [f"{r.get('status')}: {r.get('status_reason') or 'no reason'}"]})
            continue
        by_cfg.setdefault(same_config(r, CONFIG) + (r.get("run_id"),), []).append(r)
    for group in by_cfg.values():
        group.sort(key=lambda r: r.get("batch_size") or 0)
        rep, largest = group[0], group[-1]
        sel.throughput_rows += len(group) - 1
        cand = dict(rep, mem_mb=mem_mb(rep), throughput_ips=largest.get("throughput_ips"),
                    throughput_batch=largest.get("batch_size"))
        reasons = _filters(rep, c) + _limits(rep, c)
        if (max_latency_ms is not None or max_p99_ms is not None) and rep.get("batch_size") != 1:
            reasons.append(f"no single-stream (batch 1) latency, smallest batch is {rep.get('batch_size')}")
        if reasons:
            sel.excluded.append({"row": rep, "reasons": reasons})
        else:
            sel.candidates.append(cand)
    # constraint misses first, then filtered-out rows, then skipped/failed ones
    sel.excluded.sort(key=lambda e: (e["row"].get("status") != "ok", bool(_filters(e["row"], c))))
    sel.candidates.sort(key=lambda r: rank_key(r, "top1"))
    return sel
