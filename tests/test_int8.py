"""INT8 made for each target: recipes read back from the graphs, the validation budget in export.json, which
runtime benches which INT8 file, and a model that cannot be quantized."""
from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from deploybench.config import from_dict
from deploybench.errors import DeployBenchError
from deploybench.export import export_run
from deploybench.io import read_json
from deploybench.records import Artifact
from deploybench.runtimes import get_runner

from conftest import tiny_config_dict


@pytest.fixture(scope="module")
def int8_entries(exported_run):
    cfg, run = exported_run
    arts = read_json(run.engine_dir(cfg.root) / "export.json")["artifacts"]
    return {a["file"]: a for a in arts if a["precision"] == "int8" and a["format"] != "tensorrt"}   # no GPU here


def _zero_points(path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(activation zero points of QuantizeLinear nodes, zero points of DequantizeLinear nodes of weights)."""
    model = onnx.load(str(path))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    acts = [inits[n.input[2]] for n in model.graph.node if n.op_type == "QuantizeLinear"]
    weights = [(inits[n.input[0]], inits[n.input[1]], inits[n.input[2]]) for n in model.graph.node
               if n.op_type == "DequantizeLinear" and n.input[0] in inits and inits[n.input[0]].ndim == 4]
    return acts, weights


def test_s8s8_is_symmetric_int8_for_tensorrt(exported_run):
    cfg, run = exported_run
    acts, weights = _zero_points(run.engine_dir(cfg.root) / "model.int8.s8s8.onnx")
    assert acts and weights
    assert all(z.dtype == np.int8 and not z.any() for z in acts)             # symmetric int8 activations
    assert all(q.dtype == np.int8 and z.dtype == np.int8 and not z.any() for q, _, z in weights)
    assert any(s.size > 1 for _, s, _ in weights)                             # per-channel weight scales


def test_u8s8_has_uint8_asymmetric_activations(exported_run):
    cfg, run = exported_run
    acts, weights = _zero_points(run.engine_dir(cfg.root) / "model.int8.u8s8.onnx")
    assert acts and all(z.dtype == np.uint8 for z in acts) and any(z.any() for z in acts)
    assert all(q.dtype == np.int8 and not z.any() for q, _, z in weights)


def test_nncf_ir_is_quantized(exported_run):
    import openvino as ov

    cfg, run = exported_run
    model = ov.Core().read_model(str(run.engine_dir(cfg.root) / "model.int8.nncf.xml"))
    assert any(op.get_type_name() == "FakeQuantize" for op in model.get_ops())


def test_export_json_records_recipe_and_budget(exported_run, int8_entries):
    cfg, run = exported_run
    want = {"model.int8.s8s8.onnx": ("s8s8-qdq", "tensorrt"), "model.int8.u8s8.onnx": ("u8s8-qdq", "onnxruntime-cpu"),
            "model.int8.nncf.xml": ("nncf-ptq", "openvino")}
    assert set(want) <= set(int8_entries)
    val = cfg.export.int8.val_images
    assert val > cfg.datasets[0].max_val      # the budget reads the val split past fine-tuning's max_val cap
    fp32_nodes = {n.name for n in onnx.load(str(run.engine_dir(cfg.root) / "model.fp32.onnx")).graph.node}
    for file, (recipe, target) in want.items():
        e = int8_entries[file]
        assert e["status"] == "ok" and (e["recipe"], e["target"]) == (recipe, target), e
        assert e["val_images"] == val and e["seconds"] > 0
        assert e["val_drop"] == pytest.approx(e["val_top1_fp32"] - e["val_top1_int8"], abs=1e-6)
        assert e["budget_met"] is (e["val_drop"] <= cfg.export.int8.max_drop)
        assert bool(e["reason"]) is not e["budget_met"]                       # a missed budget is said
        assert len(e["fp32_layers"]) <= cfg.export.int8.max_fallbacks
        assert set(e["fp32_layers"]) <= fp32_nodes, e["fp32_layers"]
        # bias correction (NNCF) with every layer quantized; fallback steps re-quantize with a cheap method
        first, fallback = {"model.int8.u8s8.onnx": ("nncf", "minmax"), "model.int8.s8s8.onnx": ("minmax", "minmax"),
                           "model.int8.nncf.xml": ("nncf", "nncf-fast")}[file]
        assert e["calibration_method"] == (fallback if e["fp32_layers"] else first), e
    assert len({e["val_top1_fp32"] for e in int8_entries.values()}) == 1      # one fp32 reference per run


def test_fp32_layers_are_not_quantized(exported_run, int8_entries):
    """A layer export.json lists as kept in fp32 has fp32 weights in the ONNX file; the others int8 weights."""
    cfg, run = exported_run
    for file in ("model.int8.s8s8.onnx", "model.int8.u8s8.onnx"):
        model = onnx.load(str(run.engine_dir(cfg.root) / file))
        floats = {t.name for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
        fp32_weights = {n.name for n in model.graph.node if n.op_type in ("Conv", "Gemm") and n.input[1] in floats}
        kept = set(int8_entries[file]["fp32_layers"])
        assert kept <= fp32_weights and len(fp32_weights) == len(kept), (kept, fp32_weights)


@pytest.mark.parametrize("runtime,target,cross,ok", [
    ("onnxruntime-cpu", "onnxruntime-cpu", False, True), ("onnxruntime-cpu", "tensorrt", False, False),
    ("onnxruntime-cpu", "tensorrt", True, True), ("openvino", "onnxruntime-cpu", False, False),
    ("openvino", "openvino", False, True), ("onnxruntime-trt", "tensorrt", False, True),
    ("onnxruntime-cuda", "tensorrt", False, True), ("tensorrt", "tensorrt", False, True),
    ("onnxruntime-cpu", "", False, True),
])
def test_each_runtime_benches_the_int8_file_made_for_it(runtime, target, cross, ok):
    fmt = "tensorrt" if runtime == "tensorrt" else "onnx"
    got, reason = get_runner(runtime).supports(Artifact("x", fmt, "int8", target=target), cross)
    assert got is ok and (ok or reason.startswith(f"made for {target}"))
    assert get_runner(runtime).supports(Artifact("x", fmt, "fp32", target=target), cross)[0]   # only INT8 is targeted


def test_bench_artifacts_carry_recipe(exported_run):
    from deploybench.workdir import Workdir

    cfg, run = exported_run
    arts = {a.path.rsplit("/", 1)[-1]: a for a in Workdir(cfg.root).artifacts(run.run_id)}
    assert (arts["model.int8.u8s8.onnx"].recipe, arts["model.int8.u8s8.onnx"].target) == ("u8s8-qdq", "onnxruntime-cpu")
    assert arts["model.fp32.onnx"].recipe == "" and arts["model.fp32.onnx"].target == ""


def test_int8_config_is_typed_and_checked(tmp_path):
    cfg = from_dict(tiny_config_dict(tmp_path, export={"int8": {"max_drop": 0.5, "try_methods": ["entropy"]}}))
    assert cfg.export.int8.max_drop == 0.5 and cfg.export.int8.val_images == 2000
    with pytest.raises(DeployBenchError, match="export.int8.max_dorp"):
        from_dict(tiny_config_dict(tmp_path, export={"int8": {"max_dorp": 1}}))


def test_unknown_try_method(tiny_cfg, trained_run):
    import dataclasses

    _, run = trained_run
    bad = dataclasses.replace(tiny_cfg.export, int8=dataclasses.replace(tiny_cfg.export.int8, try_methods=["mse"]))
    with pytest.raises(DeployBenchError, match="export.int8.try_methods: unknown 'mse'"):
        export_run(run, tiny_cfg.root, bad, precisions=["int8"])


def _unquantizable(path, classes: int) -> None:
    """A real ONNX model with nothing ORT or NNCF quantizes: max of the image, broadcast to every class."""
    nodes = [helper.make_node("ReduceMax", ["input"], ["m"], axes=[1, 2, 3], keepdims=0),
             helper.make_node("Unsqueeze", ["m", "one"], ["m1"]),
             helper.make_node("Expand", ["m1", "shape"], ["logits"])]
    graph = helper.make_graph(
        nodes, "flat", [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, ["batch", 3, None, None])],
        [helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["batch", classes])],
        [numpy_helper.from_array(np.array([1], np.int64), "one"),
         numpy_helper.from_array(np.array([1, classes], np.int64), "shape")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))


def test_unquantizable_model_fails_that_artifact_only(tmp_path, trained_run, monkeypatch):
    """Every INT8 artifact of a model neither ORT nor NNCF can quantize is `failed` with the reason; the fp32
    artifacts are kept, and export reads training and validation images only (never the test split)."""
    import deploybench.data

    cfg, run = trained_run
    shutil.copytree(run.ckpt_dir(cfg.root), run.ckpt_dir(tmp_path))
    assert export_run(run, tmp_path, cfg.export, formats=["onnx"], precisions=["fp32"]).status == "done"
    out = run.engine_dir(tmp_path)
    _unquantizable(out / "model.fp32.onnx", read_json(run.ckpt_dir(tmp_path) / "meta.json")["num_classes"])
    splits, load = [], deploybench.data.load_array
    monkeypatch.setattr(deploybench.data, "load_array", lambda ds, split, **kw: splits.append(split) or load(ds, split, **kw))
    res = export_run(run, tmp_path, cfg.export, formats=["onnx", "openvino", "tensorrt"], precisions=["fp32", "int8"])
    arts = {a["file"]: a for a in read_json(out / "export.json")["artifacts"]}
    assert res.status == "failed"
    for file in ("model.int8.s8s8.onnx", "model.int8.u8s8.onnx", "model.int8.nncf.xml"):
        assert arts[file]["status"] == "failed" and "quantized no" in arts[file]["reason"], arts[file]
        assert file in res.reason and not (out / file).exists()
    assert arts["model.fp32.onnx"]["status"] == "ok" and arts["model.fp32.xml"]["status"] == "ok"
    assert set(splits) == {"train", "val"}


def test_each_int8_file_comes_with_its_target_format():
    """The S8S8 file is TensorRT's recipe: made with --format tensorrt, not for a CPU-only export (which would
    pay its accuracy-budget search for a file no CPU runtime benches by default)."""
    from deploybench.export import _planned

    cpu, _ = _planned(["onnx", "openvino"], ["fp32", "int8"])
    assert "model.int8.u8s8.onnx" in cpu and "model.int8.nncf.xml" in cpu and "model.int8.s8s8.onnx" not in cpu
    gpu, skipped = _planned(["onnx", "tensorrt"], ["int8"])
    assert "model.int8.s8s8.onnx" in gpu and "model.int8.nncf.xml" not in gpu
    assert skipped or any(f.endswith(".engine") for f in gpu)     # the engine: built, or skipped with the reason


def test_a_layer_kept_in_fp32_stays_fp32_under_ort(tmp_path):
    """nodes_to_exclude alone leaves Q/DQ on the layer's input, and ORT's optimizer then re-quantizes its fp32
    weights per tensor (WeightBiasQuantization): the "fp32" layer ran in int8. quantize_int8 rewires such inputs
    to fp32, so ORT's optimized graph keeps exactly that layer as a float Conv."""
    import onnxruntime as ort
    import torch

    from deploybench.export.onnx import export_onnx
    from deploybench.export.quantize import quantize_int8

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(8, 8, 3, padding=1, groups=8), torch.nn.ReLU(),
                              torch.nn.Conv2d(8, 4, 1), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).eval()
    src = tmp_path / "m.onnx"
    export_onnx(net, src, 16, 17, 3)
    convs = [n.name for n in onnx.load(str(src)).graph.node if n.op_type == "Conv"]
    images = np.random.default_rng(0).standard_normal((16, 3, 16, 16)).astype(np.float32)

    def optimized_ops(keep: tuple) -> list[str]:
        dst, opt = tmp_path / f"q{len(keep)}.onnx", tmp_path / f"o{len(keep)}.onnx"
        quantize_int8(src, dst, images, "minmax", "u8s8", keep)
        so = ort.SessionOptions()
        so.optimized_model_filepath = str(opt)
        ort.InferenceSession(str(dst), so, providers=["CPUExecutionProvider"])
        return [n.op_type for n in onnx.load(str(opt)).graph.node]

    assert optimized_ops(()).count("QLinearConv") == 3
    ops = optimized_ops((convs[1],))        # the depthwise conv kept in fp32
    assert ops.count("QLinearConv") == 2 and ops.count("Conv") + ops.count("FusedConv") == 1, ops


def test_nncf_u8s8_is_uint8_exactly_and_ort_runs_it_in_int8(tmp_path):
    """NNCF's ONNX backend writes int8 zero points for signed activations; uint8_activations moves them to uint8
    without changing a dequantized value (same logits through ORT), and ORT then fuses every convolution into
    QLinearConv (an int8-activation graph it runs as float Conv between Q/DQ, 6x slower than fp32)."""
    import nncf
    import onnxruntime as ort
    import torch

    from deploybench.export.nncf_onnx import quantize_nncf_onnx, uint8_activations
    from deploybench.export.onnx import INPUT, export_onnx

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU6(),
                              torch.nn.Conv2d(8, 8, 3, padding=1, groups=8), torch.nn.ReLU6(),
                              torch.nn.Conv2d(8, 4, 1), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).eval()
    src, dst = tmp_path / "m.onnx", tmp_path / "q.onnx"
    export_onnx(net, src, 16, 17, 3)
    images = np.random.default_rng(0).standard_normal((32, 3, 16, 16)).astype(np.float32)
    signed = nncf.quantize(onnx.load(str(src)), nncf.Dataset([images], lambda b: {INPUT: b}), subset_size=32,
                           preset=nncf.QuantizationPreset.MIXED)
    zps = {t.name: numpy_helper.to_array(t) for t in signed.graph.initializer}
    assert any(zps[n.input[2]].dtype == np.int8 for n in signed.graph.node if n.op_type == "QuantizeLinear")
    onnx.save(signed, str(tmp_path / "s.onnx"))
    onnx.save(uint8_activations(onnx.load(str(tmp_path / "s.onnx"))), str(tmp_path / "u.onnx"))
    acts, _ = _zero_points(tmp_path / "u.onnx")
    assert acts and all(z.dtype == np.uint8 for z in acts)

    def run(path, opt=None):
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL   # the Q/DQ math as written
        if opt:
            so = ort.SessionOptions()
            so.optimized_model_filepath = str(opt)
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, {INPUT: images})[0]

    np.testing.assert_array_equal(run(tmp_path / "s.onnx"), run(tmp_path / "u.onnx"))
    quantize_nncf_onnx(src, dst, images)
    acts, weights = _zero_points(dst)
    assert acts and all(z.dtype == np.uint8 for z in acts) and weights and all(q.dtype == np.int8 for q, _, _ in weights)
    run(dst, tmp_path / "opt.onnx")
    ops = [n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node]
    assert ops.count("QLinearConv") == 3 and "Conv" not in ops and "FusedConv" not in ops, ops


@pytest.mark.parametrize("act, signed", [("ReLU6", False), ("SiLU", True), ("GELU", True)])
def test_nncf_openvino_activations_are_symmetric_for_relu_models(tmp_path, act, signed):
    """OpenVINO's INT8: a ReLU-family model gets symmetric activation quantizers (NNCF preset PERFORMANCE: no zero
    point, which keeps the CPU plugin's depthwise convolutions on its fast kernels); a model whose activations can
    be negative (SiLU, GELU) keeps asymmetric ones (MIXED), read back from the quantized graph's FakeQuantize
    ranges."""
    import openvino as ov
    import torch

    from deploybench.export.onnx import export_onnx
    from deploybench.export.openvino import nncf_preset, nncf_quantize

    torch.manual_seed(0)
    a = getattr(torch.nn, act)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), a(), torch.nn.Conv2d(8, 8, 3, padding=1, groups=8),
                              a(), torch.nn.Conv2d(8, 4, 1), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).eval()
    src = tmp_path / "m.onnx"
    export_onnx(net, src, 16, 17, 3)
    assert (nncf_preset(ov.convert_model(str(src))).value == "mixed") == signed
    images = np.random.default_rng(0).standard_normal((32, 3, 16, 16)).astype(np.float32)
    q = nncf_quantize(src, images)
    asymmetric = []
    for op in q.get_ops():
        if op.get_type_name() != "FakeQuantize" or op.input_value(0).get_node().get_type_name() == "Constant":
            continue
        lo, hi = (float(op.input_value(i).get_node().get_data().ravel()[0]) for i in (1, 2))
        asymmetric.append(not (lo == 0 or abs(-lo - hi * 128 / 127) < 1e-3 * hi))
    assert asymmetric and any(asymmetric) == signed, asymmetric
