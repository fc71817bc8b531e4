"""compute_precision read back from real runtimes, per-operator profiles (bench/profile.py) and the report section
on the tiny exported run. Artifacts are found by format and precision in export.json, not by file name."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from deploybench.bench import profile as prof
from deploybench.io import read_json
from deploybench.records import Artifact
from deploybench.runtimes import RUNTIMES, get_runner
from deploybench.runtimes.base import compute_label
from deploybench.runtimes.ort_graph import graph_precision, read_graph


def _artifact(cfg, run, fmt: str, precision: str) -> Artifact:
    exp = read_json(run.engine_dir(cfg.root) / "export.json")
    a = next(a for a in exp["artifacts"] if a["format"] == fmt and a["precision"] == precision and a["status"] == "ok")
    return Artifact(str(run.engine_dir(cfg.root) / a["file"]), fmt, precision, run.run_id)


def _meta(cfg, run) -> dict:
    return read_json(run.engine_dir(cfg.root) / "export.json")["meta"]


def test_compute_label():
    assert compute_label({"int8": 36, "fp32": 14}) == "int8+fp32"
    assert compute_label({"int8": 49, "fp32": 1}) == "int8"          # one layer kept in fp32: still an int8 graph
    assert compute_label({"fp32": 50}) == "fp32"
    assert compute_label({}) is None


@pytest.mark.parametrize("runtime,fmt,precision,compute", [
    ("onnxruntime-cpu", "onnx", "fp32", "fp32"),
    ("onnxruntime-cpu", "onnx", "fp16", "fp32"),      # ORT CPU folds the casts into the weights: fp32 kernels
    ("onnxruntime-cpu", "onnx", "int8", "int8"),
    ("openvino", "onnx", "fp32", "fp32"),
    ("openvino", "onnx", "fp16", "fp32"),             # CPU plugin upconverts fp16 weights, computes f32
    ("openvino", "openvino", "fp16", "fp32"),
    ("openvino", "openvino", "int8", "int8"),
    ("openvino-bf16", "openvino", "fp32", "bf16"),
])
def test_compute_precision_read_back(exported_run, runtime, fmt, precision, compute):
    ok, reason = RUNTIMES[runtime].available()
    if not ok:
        pytest.skip(reason)
    cfg, run = exported_run
    runner = get_runner(runtime)(_artifact(cfg, run, fmt, precision), _meta(cfg, run), threads=1)
    assert runner.compute_precision is None            # unknown until the runtime has loaded the artifact
    with runner as r:
        assert r.precision == precision                 # the artifact's, never overwritten
        assert r.compute_precision.split("+")[0] == compute


def test_ort_graph_reader_matches_onnx(exported_run, tmp_path):
    """The wire-format reader sees what the onnx package sees, and can tell fp16 weights when a graph has them."""
    import onnx
    import onnxruntime as ort

    cfg, run = exported_run
    int8 = _artifact(cfg, run, "onnx", "int8").path
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    ort.InferenceSession(int8, so, providers=["CPUExecutionProvider"])
    for path in (so.optimized_model_filepath, _artifact(cfg, run, "onnx", "fp16").path):
        nodes, types = read_graph(path)
        graph = onnx.load(path).graph
        assert [(n["op_type"], n["inputs"], n["outputs"]) for n in nodes] == \
            [(n.op_type, list(n.input), list(n.output)) for n in graph.node]
        assert types == {t.name: t.data_type for t in graph.initializer} | \
            {i.name: i.type.tensor_type.elem_type for i in graph.input}
    assert graph_precision(_artifact(cfg, run, "onnx", "fp16").path) == "fp16"   # the file as written
    assert graph_precision(so.optimized_model_filepath).startswith("int8")


def test_fp16_file_on_ort_cpu_is_fp32_math(exported_run, tmp_path):
    """What compute_precision fp32 claims: the fp16 file's outputs equal those of the fp32 graph with fp16-rounded
    weights (no fp16 rounding between layers), far closer than to the fp32 file itself."""
    import onnx
    from onnx import numpy_helper

    cfg, run = exported_run
    model = onnx.load(_artifact(cfg, run, "onnx", "fp32").path)
    for t in model.graph.initializer:
        a = numpy_helper.to_array(t)
        if a.dtype == np.float32:
            t.CopyFrom(numpy_helper.from_array(a.astype(np.float16).astype(np.float32), t.name))
    onnx.save(model, tmp_path / "w16.onnx")
    x = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)
    outs = {}
    for name, art in (("fp16", _artifact(cfg, run, "onnx", "fp16")), ("fp32", _artifact(cfg, run, "onnx", "fp32")),
                      ("w16", Artifact(str(tmp_path / "w16.onnx"), "onnx", "fp32"))):
        with get_runner("onnxruntime-cpu")(art, {}, threads=1) as r:
            outs[name] = r.infer(x)
    scale = np.abs(outs["fp32"]).max()
    assert np.abs(outs["fp16"] - outs["w16"]).max() < 1e-5 * scale
    assert np.abs(outs["fp16"] - outs["fp32"]).max() > 10 * np.abs(outs["fp16"] - outs["w16"]).max()


@pytest.fixture(scope="module")
def benched(exported_run):
    """Rows of one real bench call (ORT CPU and OpenVINO, batch 1 and 2, one execution) with their profiles."""
    from deploybench.bench.stage import bench_run

    cfg, run = exported_run
    bcfg = dataclasses.replace(cfg.bench, latency=dataclasses.replace(cfg.bench.latency, executions=1),
                               accuracy_images=16)
    rows = bench_run(run, cfg.root, bcfg, runtimes=["torch", "onnxruntime-cpu", "openvino"], batch_sizes=[1, 2])
    return cfg, run, rows


def test_bench_rows_point_to_profiles(benched):
    cfg, run, rows = benched
    ok = [r for r in rows if r["status"] == "ok"]
    profiled = [r for r in ok if r["runtime"] != "torch" and r["batch_size"] == 1]
    assert profiled and all(r["profile_path"] for r in profiled)
    assert all(r["profile_path"] is None for r in ok if r not in profiled)   # torch, batch 2: not profiled
    for r in profiled:
        assert r["profile_path"] == f"engines/{run.run_id}/profiles/{r['runtime']}.{r['artifact']}.bs1.json"
        p = read_json(cfg.root / r["profile_path"])
        assert (p["runtime"], p["artifact"], p["precision"], p["batch_size"]) == \
            (r["runtime"], r["artifact"], r["precision"], 1)
        assert p["iterations"] == prof.ITERATIONS
        assert math.isclose(sum(o["share"] for o in p["by_op_type"]), 1.0, abs_tol=1e-3)
        assert math.isclose(sum(o["ms"] for o in p["by_op_type"]), p["total_ms"], rel_tol=1e-3)
        ops = {o["op_type"] for o in p["by_op_type"]}
        conv = {"onnxruntime-cpu": {"Conv", "QLinearConv", "FusedConv"},
                "openvino": {"Convolution", "GroupConvolution"}}[r["runtime"]]
        assert ops & conv, ops
        assert all(o["count"] >= 1 and o["ms"] >= 0 for o in p["by_op_type"])
        assert 0 < len(p["top_nodes"]) <= prof.TOP_NODES
        assert p["top_nodes"] == sorted(p["top_nodes"], key=lambda n: -n["ms"])
        if r["precision"] == "int8":    # the quantized kernels really ran: int8 exec types in the profile
            types = {t for o in p["by_op_type"] for t in o["exec_types"]}
            assert types & {"uint8", "int8"} or any("I8" in t or "i8" in t for t in types), types


def test_profile_failure_is_reported(exported_run, tmp_path):
    cfg, run = exported_run
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 32, 32), np.float32))
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    with pytest.raises(RuntimeError, match="profile of onnxruntime-cpu broken.onnx bs 1 failed"):
        prof.profile_configuration("onnxruntime-cpu", Artifact(str(broken), "onnx", "fp32"), {}, 1, 1,
                                   tmp_path / "x.npy", tmp_path / "p.json")
    assert not (tmp_path / "p.json").exists()


def test_report_section(benched, tmp_path):
    """Top op types per profiled row; the INT8-vs-fp32 side by side; a slower INT8 row is said, with its op types."""
    from deploybench.report.html import render_html
    from deploybench.report.markdown import render_markdown
    from deploybench.report.profile import profile_markdown

    cfg, run, rows = benched
    rows = [dict(r) for r in rows]
    by = {(r["runtime"], r["format"], r["precision"], r["batch_size"]): r for r in rows if r["status"] == "ok"}
    int8, fp32 = by[("onnxruntime-cpu", "onnx", "int8", 1)], by[("onnxruntime-cpu", "onnx", "fp32", 1)]
    int8["latency_ms_p50"], fp32["latency_ms_p50"] = 2.0, 1.0     # make the INT8 row the slower one
    md = render_markdown(rows, cfg)
    section = md[md.index("## Where the time goes"):]
    assert "| backbone | runtime | artifact | precision | compute | p50 ms | top op types (share of time) |" in section
    ort8 = read_json(cfg.root / int8["profile_path"])
    top = ort8["by_op_type"][0]
    assert f"{top['op_type']} {top['share'] * 100:.0f} %" in section
    assert "#### INT8 vs fp32 per op type: efficientnet_lite0" in section
    assert f"onnxruntime-cpu {int8['artifact']} (compute {ort8['compute_precision']}): p50 2 ms vs 1 ms" in section
    assert "2.0x slower); most time added by " in section
    fp32["latency_ms_p50"] = 3.0
    assert "INT8 slower than fp32" not in profile_markdown(rows, cfg)
    page = render_html(rows, cfg)
    assert "<h2>Where the time goes</h2>" in page and "INT8 vs fp32 per op type" in page
    gone = dict(int8, profile_path="engines/nowhere.json")
    assert "profile file missing" in profile_markdown([gone], cfg)
    assert profile_markdown([dict(r, profile_path=None) for r in rows], cfg) is None
    json.dumps(rows)     # rows stay plain data (the store writes them)


def test_report_int8_section(benched):
    """One line per INT8 file at batch 1: its own export.json budget (method, fp32 layers, val Δ), its own row's
    test Δ, and the fp32/INT8 p50 ratio of the rounds both rows ran in the same bench call."""
    from deploybench.report.html import render_html
    from deploybench.report.int8 import int8_markdown
    from deploybench.report.markdown import render_markdown

    cfg, run, rows = benched
    rows = [dict(r) for r in rows]
    md = render_markdown(rows, cfg)
    section = md[md.index("## INT8: what it costs and buys"):md.index("## Where the time goes")]
    entries = {a["file"]: a for a in read_json(run.engine_dir(cfg.root) / "export.json")["artifacts"]}
    ok = {(r["runtime"], r["precision"], r["batch_size"]): r for r in rows if r["status"] == "ok"}
    lines = [line for line in section.splitlines() if line.startswith("| efficientnet")]
    assert len(lines) == 2                                    # ORT U8S8 and OpenVINO NNCF, batch 1 only
    for runtime in ("onnxruntime-cpu", "openvino"):
        r8, r32 = ok[(runtime, "int8", 1)], ok[(runtime, "fp32", 1)]
        e = entries[r8["artifact"]]
        cells = [c.strip() for c in next(x for x in lines if f"| {runtime} | {r8['artifact']} |" in x).split("|")[1:-1]]
        assert cells[3] == e["calibration_method"] and cells[4].split(":")[0] == str(len(e["fp32_layers"]))
        assert cells[5].startswith(f"{-e['val_drop']:+.2f} ± {e['val_drop_se']:.2f} ({e['val_images']})")
        assert cells[6] == ("met" if e["budget_met"] else f"missed: {e['reason']}")
        assert cells[7] == f"{r8['top1_delta_vs_torch_fp32']:+.2f} ± {r8['top1_delta_se']:.2f}"
        (a,), (b,) = r32["latency_ms_execution_p50s"], r8["latency_ms_execution_p50s"]     # one round each
        assert cells[8] == f"{a / b:.2f}×"
    assert "INT8: what it costs and buys" in render_html(rows, cfg)
    assert int8_markdown([r for r in rows if r["precision"] != "fp32"], cfg) is None    # nothing to compare with
    # merged with a second device measured at batch 2 only: its lines are its own, at its smallest batch, labelled
    other = [dict(r, device="Other CPU", device_fingerprint="other", latency_ms_execution_p50s=None,
                  latency_ms_p50=2.0 if r["precision"] == "int8" else 3.0)
             for r in rows if r["batch_size"] == 2]
    merged = int8_markdown(rows + other, cfg).splitlines()
    mine = [x for x in merged if x.startswith("| efficientnet") and "(Other CPU)" not in x]
    theirs = [x for x in merged if x.startswith("| efficientnet") and "(Other CPU)" in x]
    assert len(mine) == len(theirs) == 2 and all("1.50× (p50 only" in x for x in theirs)
    assert sorted(x.replace(f" ({rows[0]['device']})", "") for x in mine) == sorted(lines)


def test_a_runner_owns_its_operator_profiler():
    """The bench profiles the runtimes whose Runner has a profiler (ORT CPU session profiling, OpenVINO performance
    counters) and no other: not torch, not ORT's GPU providers, whose trace times host-side launches."""
    from deploybench.runtimes import RUNNERS

    profiled = {runner.name for runner in RUNNERS if runner.has_op_profiler()}
    assert profiled == {"onnxruntime-cpu", "openvino", "openvino-bf16"}
