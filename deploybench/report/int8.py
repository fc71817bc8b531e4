"""Report section "INT8: what it costs and buys": each INT8 row against the fp32 row of its run and runtime, with
the accuracy budget export recorded for that file (export.json: method, layers kept in fp32, validation drop)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..formats import ExportEntry
from ..workdir import Workdir
from .aggregate import backbone_label, int8_pairs, ok_rows, paired_ratio
from .fmt import HTML, MARKDOWN, workdir_root

NOTE = ("Each INT8 file against the fp32 file of the same run, runtime and device, at the smallest batch size. "
        "speed-up: fp32 p50 over INT8 p50 from the paired rounds of one bench call (95 % CI). val Δ: INT8 minus fp32 "
        "top-1 on the validation images export's budget measured (± paired standard error); the budget is met when "
        "the drop is within export.int8.max_drop. test Δ: top-1 vs torch fp32 on this report's test images, which "
        "export never reads (± paired standard error: only images exactly one of the two gets right move it, so "
        "where INT8 and fp32 disagree on many images, a Δ of 1 pt on 2,000 images can be noise). fp32 layers: kept "
        "out of INT8 by the budget; method: what made the file.")
HEAD = ["backbone", "runtime", "file", "method", "fp32 layers", "val Δ pt (images)", "budget", "test Δ pt",
        "speed-up [95 % CI]"]


def _layer(name: str) -> str:
    """An ONNX node name shortened to its module path: '/blocks/blocks.1/blocks.1.0/conv_dw/Conv' -> 'blocks.1.0/
    conv_dw'."""
    parts = [p for p in name.strip("/").split("/") if p]
    return "/".join(parts[-3:-1]) if len(parts) > 2 else (parts[0] if parts else name)


def _speedup(r8: dict, r32: dict) -> str:
    ratio = paired_ratio(r8, r32)
    if ratio is None:
        return f"{r32['latency_ms_p50'] / r8['latency_ms_p50']:.2f}× (p50 only: other bench calls)"
    return f"{ratio.ratio:.2f}×" + (f" [{ratio.low:.2f}, {ratio.high:.2f}]" if ratio.low is not None else "")


def int8_view(rows: list[dict], root: Path) -> list[list[str]]:
    """The section's table body: one line per INT8 row at the smallest batch size its run, runtime and device
    were measured at, that has an fp32 row; the runtime is labelled with its device where rows of several devices
    were merged (a Jetson's onnxruntime-cpu beside this machine's)."""
    ok = ok_rows(rows)
    smallest = {}
    for r in ok:
        key = (r["run_id"], r["runtime"], r.get("device_fingerprint"))
        smallest[key] = min(smallest.get(key, r["batch_size"]), r["batch_size"])
    several = len({r.get("device_fingerprint") for r in ok}) > 1
    entries: dict[str, dict[str, ExportEntry]] = {}
    body = []
    for r8, r32 in sorted(int8_pairs(ok), key=lambda p: (backbone_label(p[0]), p[0]["runtime"], p[0]["artifact"])):
        if r8["batch_size"] != smallest[(r8["run_id"], r8["runtime"], r8.get("device_fingerprint"))]:
            continue
        runtime = f"{r8['runtime']} ({r8.get('device')})" if several else r8["runtime"]
        if r8["run_id"] not in entries:
            entries[r8["run_id"]] = Workdir(root).entries(r8["run_id"])
        e = entries[r8["run_id"]].get(Path(r8["artifact"]).name)
        delta, se = r8.get("top1_delta_vs_torch_fp32"), r8.get("top1_delta_se")
        test = "–" if delta is None else f"{delta:+.2f}" + (f" ± {se:.2f}" if se is not None else "")
        if e is None or e.val_drop is None:      # bring-your-own file, or a manifest without a budget
            body.append([backbone_label(r8), runtime, r8["artifact"], "–", "–", "–", "–", test,
                         _speedup(r8, r32)])
            continue
        layers = f"{len(e.fp32_layers)}" + (f": {', '.join(_layer(n) for n in e.fp32_layers)}" if e.fp32_layers else "")
        budget = "met" if e.budget_met else f"missed: {e.reason}"
        body.append([backbone_label(r8), runtime, r8["artifact"], e.calibration_method or "–", layers,
                     f"{-e.val_drop:+.2f}" + (f" ± {e.val_drop_se:.2f}" if e.val_drop_se is not None else "")
                     + f" ({e.val_images})", budget, test, _speedup(r8, r32)])
    return body


def _render(rows: list[dict], cfg, fmt: dict) -> Optional[str]:
    body = int8_view(rows, workdir_root(cfg))
    if not body:
        return None
    return fmt["join"].join([fmt["h"](2, "INT8: what it costs and buys"), fmt["note"](NOTE), fmt["table"](HEAD, body)])


def int8_markdown(rows: list[dict], cfg=None) -> Optional[str]:
    """The Markdown section, or None when no INT8 row has an fp32 row to compare with."""
    return _render(rows, cfg, MARKDOWN)


def int8_html(rows: list[dict], cfg=None) -> str:
    """The same section as HTML ("" when there is none)."""
    return _render(rows, cfg, HTML) or ""
