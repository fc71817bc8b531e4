"""Report section "Where the time goes": top op types per profiled configuration (bench/profile.py files the rows
point to via `profile_path`), INT8 vs fp32 per op type for one model, and why an INT8 row is slower than fp32."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..io import read_json
from .aggregate import backbone_label, devices, int8_pairs, ok_rows
from .fmt import HTML, MARKDOWN, workdir_root

TOP_OPS, DIFF_OPS, WHY_OPS = 4, 8, 3
NOTE = ("Per-operator profiles at batch 1 (ONNX Runtime session profiling, OpenVINO performance counters), taken "
        "in a separate pass after the timed executions: ms per inference are each node's median over the profiled "
        "inferences, summed per op type, with the profiler on; compare shares and op types rather than ms with p50.")


def _profiles(rows: list[dict], root: Path) -> list[tuple[dict, Optional[dict]]]:
    """(row, profile or None) for every ok row of a profiled configuration (rows with `profile_path`)."""
    out = []
    for r in ok_rows(rows):
        if r.get("profile_path"):
            path = Path(r["profile_path"])
            prof = read_json(path if path.is_absolute() else root / path)
            out.append((r, prof if isinstance(prof, dict) and prof.get("by_op_type") else None))
    return out


def _top_text(prof: Optional[dict]) -> str:
    if prof is None:
        return "profile file missing"
    return ", ".join(f"{o['op_type']} {o['share'] * 100:.0f} %" for o in prof["by_op_type"][:TOP_OPS])


def _pairs(profiled: list[tuple[dict, Optional[dict]]]) -> list[tuple[tuple, tuple]]:
    """(int8 (row, prof), fp32 (row, prof)) for each INT8 row with its fp32 row (aggregate.int8_pairs)."""
    prof = {id(r): p for r, p in profiled}
    return [((r8, prof[id(r8)]), (r32, prof[id(r32)])) for r8, r32 in int8_pairs([r for r, _ in profiled])]


def _diff(p8: dict, p32: dict) -> list[tuple[str, float, float]]:
    """(op type, fp32 ms, int8 ms) over both profiles' op types, largest |difference| first."""
    ms32 = {o["op_type"]: o["ms"] for o in p32["by_op_type"]}
    ms8 = {o["op_type"]: o["ms"] for o in p8["by_op_type"]}
    rows = [(op, ms32.get(op, 0.0), ms8.get(op, 0.0)) for op in set(ms32) | set(ms8)]
    return sorted(rows, key=lambda t: -abs(t[2] - t[1]))


def _slower(pairs) -> list[str]:
    """One sentence per INT8 row whose p50 is above its fp32 row's, naming the op types adding the most time."""
    lines = []
    for (r8, p8), (r32, p32) in pairs:
        if (r8.get("latency_ms_p50") or 0) <= (r32.get("latency_ms_p50") or float("inf")):
            continue
        why = "no profile to say why"
        if p8 and p32:
            added = [(op, b - a) for op, a, b in _diff(p8, p32) if b > a][:WHY_OPS]
            why = "most time added by " + ", ".join(f"{op} +{d:.3f} ms" for op, d in added)
        lines.append(f"{backbone_label(r8)} {r8['runtime']} {r8['artifact']} (compute "
                     f"{r8.get('compute_precision') or (p8 or {}).get('compute_precision') or '?'}): p50 "
                     f"{r8['latency_ms_p50']:.3g} ms vs {r32['latency_ms_p50']:.3g} ms for {r32['artifact']} "
                     f"({r8['latency_ms_p50'] / r32['latency_ms_p50']:.1f}x slower); {why}")
    return lines


def profile_view(rows: list[dict], root: Path) -> list[dict]:
    """Per device with profiles: {"device", "top": (head, body), "model", "diffs": [(title, head, body)],
    "slower": [sentence]} — the data both report formats render."""
    views = []
    for fp, name in devices(rows).items():
        profiled = [(r, p) for r, p in _profiles(rows, root) if r.get("device_fingerprint") == fp]
        if not profiled:
            continue
        profiled.sort(key=lambda rp: (backbone_label(rp[0]), rp[0]["runtime"], rp[0]["artifact"]))
        top = (["backbone", "runtime", "artifact", "precision", "compute", "p50 ms", "top op types (share of time)"],
               [[backbone_label(r), r["runtime"], r["artifact"], r["precision"],
                 r.get("compute_precision") or (p or {}).get("compute_precision") or "–",
                 f"{r['latency_ms_p50']:.3g}" if r.get("latency_ms_p50") is not None else "–", _top_text(p)]
                for r, p in profiled])
        pairs = _pairs(profiled)
        full = [(a, b) for a, b in pairs if a[1] and b[1]]
        model = min((backbone_label(a[0]) for a, _ in full), default=None)
        diffs = [(f"{a[0]['runtime']}: {a[0]['artifact']} vs {b[0]['artifact']}",
                  ["op type", "fp32 ms", "int8 ms", "Δ ms"],
                  [[op, f"{x:.3f}", f"{y:.3f}", f"{y - x:+.3f}"] for op, x, y in _diff(a[1], b[1])[:DIFF_OPS]])
                 for a, b in full if backbone_label(a[0]) == model]
        views.append({"device": name, "top": top, "model": model, "diffs": diffs, "slower": _slower(pairs)})
    return views


def _render(rows: list[dict], cfg, fmt: dict) -> Optional[str]:
    views = profile_view(rows, workdir_root(cfg))
    if not views:
        return None
    parts = [fmt["h"](2, "Where the time goes"), fmt["note"](NOTE)]
    for v in views:
        parts += [fmt["h"](3, v["device"]), fmt["table"](*v["top"])]
        if v["diffs"]:
            parts.append(fmt["h"](4, f"INT8 vs fp32 per op type: {v['model']}"))
            for title, head, body in v["diffs"]:
                parts += [fmt["p"](title), fmt["table"](head, body)]
        if v["slower"]:
            parts += [fmt["b"]("INT8 slower than fp32:"), fmt["list"](v["slower"])]
    return fmt["join"].join(parts)


def profile_markdown(rows: list[dict], cfg=None) -> Optional[str]:
    """The Markdown section, or None when no row has a profile."""
    return _render(rows, cfg, MARKDOWN)


def profile_html(rows: list[dict], cfg=None) -> str:
    """The same section as HTML ("" when no row has a profile)."""
    return _render(rows, cfg, HTML) or ""
