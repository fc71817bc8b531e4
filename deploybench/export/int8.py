"""INT8 artifacts made for each target, each held to an accuracy budget on the validation split.

Recipes (file, export.json `recipe`, `target` = the runtime it is made for):
  model.int8.s8s8.onnx  s8s8-qdq  tensorrt: int8 symmetric activations, int8 per-channel weights, Q/DQ form —
      TensorRT's explicit quantization; the TensorRT int8 engine is built from it and ORT's TensorRT and CUDA
      EPs run it.
  model.int8.u8s8.onnx  u8s8-qdq  onnxruntime-cpu: uint8 asymmetric activations, int8 per-channel weights —
      what ORT's x86 int8 kernels (VNNI/AMX) are built for (S8S8 runs 2-3x slower there). ORT's guidance for ARM
      is that U8S8 and S8S8 both run well, so U8S8 is kept on every machine: one recipe, one file. Made by NNCF's
      ONNX backend with bias correction (calibration_method "nncf", the default: nncf_onnx.py) or by ORT's
      quantize_static (minmax, entropy, percentile).
  model.int8.nncf.xml   nncf-ptq  openvino: NNCF post-training quantization (symmetric weights; symmetric
      activations for ReLU-family models, asymmetric where activations can be negative: openvino.nncf_preset;
      bias correction) of the fp32 model read by OpenVINO, saved as IR.
S8S8 is always made by quantize_static (TensorRT wants symmetric activations, NNCF's are asymmetric): with the
first ORT method of calibration_method + try_methods, else minmax.

Budget (ExportConfig.int8): calibrate on training images with `calibration_method`, measure top-1 on
`int8.val_images` validation images against the fp32 model on the same images; while the drop exceeds
`max_drop`, try each of `int8.try_methods`, then keep the most sensitive layers in fp32 (ORT `nodes_to_exclude`,
NNCF `ignored_scope`), one more per step (each step a real re-quantization measured on validation), up to
`max_fallbacks`. The search stops when the drop plus one paired standard error is within `max_drop` (500
validation images leave about 1 pt of noise on a top-1 difference, 2,000 about 0.5; without the margin, budgets met
on validation missed by 1-3 pt on test); `budget_met` is the drop itself within `max_drop`. Bias correction is what
lets most models meet the budget with no fallback (quickstart efficientnet_lite0: NNCF with it kept 0 layers in fp32
on ORT and on OpenVINO; min-max without it kept 3, NNCF's fast variant 2), at 5-25 s a build on 2 cores, so the
fallback steps re-quantize with a cheap method (ORT min-max; NNCF's fast bias correction, "nncf-fast").
Recipes of one run share their sensitivity: an ONNX recipe starts its search at the number of fp32 layers the
previous one needed (U8S8 first, then S8S8: one build instead of up to max_fallbacks + 1 when they agree, as they
mostly do), then tries more layers, then fewer. NNCF for OpenVINO searches from 0: its graph and ranges are its own,
and a warm start from ORT's count keeps layers it may not need (a quickstart lite0 warm-started at 3 ran its
OpenVINO INT8 1.23x faster than fp32; searched from 0, lite0 models kept 2 and ran 1.27x faster).
A budget still missed is recorded (`budget_met` false, `reason`), never hidden.
Ranking, once per run: each quantized Conv/Gemm/MatMul of the U8S8 graph alone quantized inside the fp32 model,
scored by the KL divergence of its predictions from fp32 on `rank_images` validation images. All three recipes
use it (layer names are the ONNX node names, which NNCF's ONNX backend and OpenVINO keep). NNCF's own
quantize_with_accuracy_control ranks by compiling a model per layer: 65-90 s per efficientnet_lite0 at 56 px on
2 cores (measured), against a few seconds here; it reverted the same stem convolution first. The test split is
never read here.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..config import Int8Config

RECIPES = {   # key: (file, recipe, target)
    "s8s8": ("model.int8.s8s8.onnx", "s8s8-qdq", "tensorrt"),
    "u8s8": ("model.int8.u8s8.onnx", "u8s8-qdq", "onnxruntime-cpu"),
    "nncf": ("model.int8.nncf.xml", "nncf-ptq", "openvino"),
}


def worker_threads() -> int:
    """Threads this process may use (0: all): a sweep worker's share of the cores (OMP_NUM_THREADS, set by
    sweep.local). Sessions left at their default (all cores) in two export workers at once spin against each other."""
    return int(os.environ.get("OMP_NUM_THREADS") or 0)


def _ort_logits(model, x: np.ndarray, disabled_optimizers: tuple = ()) -> np.ndarray:
    """Logits of an ONNX model (path or bytes) on ORT CPU, all optimizations (but `disabled_optimizers`), batches
    of 100."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = worker_threads()
    sess = ort.InferenceSession(str(model) if isinstance(model, Path) else model, so,
                                providers=["CPUExecutionProvider"], disabled_optimizers=list(disabled_optimizers))
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[i:i + 100]})[0] for i in range(0, len(x), 100)])


def _top1(logits: np.ndarray, y: np.ndarray) -> float:
    return round(float((logits.argmax(1) == y).mean() * 100), 3)


class Int8Job:
    """One run's INT8 work: calibration images, validation images with the fp32 model's logits (computed once),
    ORT's pre-processed graph, cached calibration ranges and sensitivity rankings, in a temporary folder."""

    def __init__(self, src: Path, calib: np.ndarray, val_x: np.ndarray, val_y: np.ndarray, cfg: Int8Config,
                 method: str):
        from .quantize import METHODS, preprocess

        self.src, self.calib, self.x, self.y, self.cfg = Path(src), calib, val_x, val_y, cfg
        self.methods = list(dict.fromkeys([method, *cfg.try_methods]))     # for U8S8, in order
        self.ort_methods = [m for m in self.methods if m in METHODS] or ["minmax"]    # S8S8 and the ranking
        self._tmp = tempfile.TemporaryDirectory(prefix="deploybench-int8-")
        self.tmp = Path(self._tmp.name)
        self.pre = preprocess(self.src, self.tmp / "pre.onnx")
        self.ref = _ort_logits(self.src, val_x)
        self.fp32_top1 = _top1(self.ref, val_y)
        self._ranking: Optional[list[str]] = None
        self.warm = 0      # fp32 layers of the last ONNX recipe that met the budget (warm start of the next)

    def close(self) -> None:
        self._tmp.cleanup()

    def _drop(self, logits: np.ndarray) -> tuple[float, float]:
        """(top-1 drop vs fp32 in points, its paired standard error) on the validation images."""
        d = (self.ref.argmax(1) == self.y).astype(np.float64) - (logits.argmax(1) == self.y)
        se = float(d.std(ddof=1) / np.sqrt(len(d)) * 100) if len(d) > 1 else 0.0
        return round(float(d.mean() * 100), 3), round(se, 3)

    def _report(self, key: str, method: str, kept: list[str], logits: np.ndarray) -> dict:
        drop, se = self._drop(logits)
        met = drop <= self.cfg.max_drop
        reason = "" if met else (f"INT8 budget not met: val top-1 drop {drop:.2f} pt > max_drop "
                                 f"{self.cfg.max_drop:g} (best of up to max_fallbacks {self.cfg.max_fallbacks} "
                                 f"layers kept in fp32: {len(kept)})")
        _, recipe, target = RECIPES[key]
        return {"recipe": recipe, "target": target, "calibration_method": method, "fp32_layers": kept,
                "val_top1_fp32": self.fp32_top1, "val_top1_int8": round(self.fp32_top1 - drop, 3), "val_drop": drop,
                "val_drop_se": se, "val_images": int(len(self.y)), "budget_met": met, "reason": reason}

    def _search(self, methods: list[str], fallback: str, build: Callable[[str, list[str]], np.ndarray],
                warm: bool = True) -> tuple[str, list[str], np.ndarray]:
        """(method, layers kept in fp32, val logits) of the first build whose drop plus one paired standard error
        is within max_drop, else of the best one: each of `methods` with every layer quantized, then the most
        sensitive layers kept in fp32 one more at a time, quantized with `fallback` (a cheap method: bias
        correction costs 5-25 s a build, too much for every step). `warm`: start from, and record, the fp32
        layer count the ONNX recipes of this run share (module docstring)."""
        best: Optional[tuple] = None     # (drop, method, kept, logits)
        fallbacks = [(k, fallback) for k in range(1, self.cfg.max_fallbacks + 1)]
        steps = steps_from_zero = [(0, m) for m in methods] + fallbacks
        if warm and self.warm:   # a sibling recipe needed `warm` layers in fp32: start there, then up, then below
            steps = [s for s in fallbacks if s[0] >= self.warm] + [s for s in steps_from_zero if s[0] < self.warm]
        for k, method in steps:
            kept = self.ranking()[:k] if k else []
            if k and len(kept) < k:
                break
            logits = build(method, kept)
            drop, se = self._drop(logits)
            if best is None or drop < best[0]:
                best = (drop, method, kept, logits)
            if drop + se <= self.cfg.max_drop:
                if warm:
                    self.warm = len(kept)
                return method, kept, logits
        return best[1:]

    def onnx(self, key: str, dst: Path) -> dict:
        """Build the `key` ONNX recipe at `dst` within the budget; its export.json fields."""
        from .nncf_onnx import quantize_nncf_onnx
        from .quantize import quantize_int8

        last: list[tuple] = []

        def build(method: str, exclude: list[str]) -> np.ndarray:
            if method == "nncf":
                quantize_nncf_onnx(self.src, dst, self.calib, tuple(exclude))
            else:
                quantize_int8(self.pre, dst, self.calib, method, key, tuple(exclude), self._cache(method))
            last[:] = [(method, exclude)]
            return _ort_logits(Path(dst), self.x)

        methods = self.methods if key == "u8s8" else self.ort_methods
        method, kept, logits = self._search(methods, self.ort_methods[0], build)
        if last != [(method, kept)]:   # the file at dst is a later, worse try: rebuild the best
            build(method, kept)
        return self._report(key, method, kept, logits)

    def openvino(self, dst: Path) -> dict:
        """NNCF-quantize the fp32 model (read by OpenVINO) into IR at `dst` within the budget; NNCF picks its
        own range estimators (openvino.nncf_preset), so `calibration_method` is "nncf" (bias correction) or, for the
        fallback steps, "nncf-fast" (its fast bias correction: about 3 s a build instead of 5-25 s)."""
        from .openvino import compiled_logits, nncf_quantize, save_ir

        models: dict[tuple, object] = {}

        def build(method: str, exclude: list[str]) -> np.ndarray:
            models[tuple(exclude)] = nncf_quantize(self.src, self.calib, exclude, fast=method == "nncf-fast")
            return compiled_logits(models[tuple(exclude)], self.x, worker_threads())

        # NNCF's graph and ranges are its own: its search starts from 0 and leaves the ONNX count alone
        method, kept, logits = self._search(["nncf"], "nncf-fast", build, warm=False)
        save_ir(models[tuple(kept)], dst)
        return self._report("nncf", method, kept, logits)

    def _cache(self, method: str) -> Path:
        return self.tmp / f"calibration.{method}.json"

    def ranking(self) -> list[str]:
        """Quantized weighted layers, most sensitive first, ranked once per run on the U8S8 graph."""
        from .quantize import quantize_int8

        if self._ranking is None:
            path, method = self.tmp / "rank.u8s8.onnx", self.ort_methods[0]
            quantize_int8(self.pre, path, self.calib, method, "u8s8", (), self._cache(method))
            n = self.cfg.rank_images
            self._ranking = rank_layers(path, self.pre, self.x[:n], self.ref[:n])
        return self._ranking


class OneLayer:
    """The fp32 model with one chosen weighted layer quantized as in Q/DQ model `qdq`: its activation inputs
    through that model's QuantizeLinear/DequantizeLinear, its weights replaced by their dequantized int8 values."""

    def __init__(self, qdq: Path, fp32: Path):
        import onnx
        from onnx import numpy_helper

        from .quantize import WEIGHTED

        q = onnx.load(str(qdq))
        self.model = onnx.load(str(fp32))
        inits = {t.name: t for t in q.graph.initializer}
        producer = {o: n for n in q.graph.node for o in n.output}
        fp32_nodes = {n.name: n for n in self.model.graph.node}
        self.layers: dict[str, tuple] = {}   # name -> (fp32 node, [(input index, extra nodes, extra initializers)])
        for node in q.graph.node:
            if node.op_type not in WEIGHTED or node.name not in fp32_nodes:
                continue
            target, changes = fp32_nodes[node.name], []
            for k, inp in enumerate(node.input):
                dq = producer.get(inp)
                if dq is None or dq.op_type != "DequantizeLinear" or k >= len(target.input):
                    continue
                src, name = producer.get(dq.input[0]), f"{target.input[k]}_q1_{k}"
                if src is not None and src.op_type == "QuantizeLinear":    # activation: the same Q/DQ pair
                    nodes = [onnx.helper.make_node("QuantizeLinear", [target.input[k], *src.input[1:]], [f"{name}_q"]),
                             onnx.helper.make_node("DequantizeLinear", [f"{name}_q", *src.input[1:]], [name])]
                    changes.append((k, nodes, [inits[i] for i in src.input[1:] if i in inits], name))
                elif all(i in inits for i in dq.input):                    # weight or bias: dequantized values
                    qv, scale, zp = (numpy_helper.to_array(inits[i]) for i in dq.input)
                    axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
                    shape = [-1 if d == axis else 1 for d in range(qv.ndim)] if scale.ndim else []
                    w = ((qv.astype(np.float64) - zp.reshape(shape)) * scale.reshape(shape)).astype(np.float32)
                    changes.append((k, [], [numpy_helper.from_array(w, name)], name))
            if changes:
                self.layers[node.name] = (target, changes)

    def logits(self, name: str, x: np.ndarray) -> np.ndarray:
        """Logits on `x` with only layer `name` quantized; the model is restored afterwards."""
        graph, (node, changes) = self.model.graph, self.layers[name]
        saved = list(node.input)
        nodes = [n for _, ns, _, _ in changes for n in ns]
        inits = {t.name: t for _, _, ts, _ in changes for t in ts}.values()
        for k, _, _, new in changes:
            node.input[k] = new
        graph.node.extend(nodes)
        graph.initializer.extend(inits)
        try:
            # the dequantized weights must stay as they are: ORT would re-quantize them per tensor
            # (quantize.fp32_inputs)
            return _ort_logits(self.model.SerializeToString(), x, ("WeightBiasQuantization",))
        finally:
            del node.input[:]
            node.input.extend(saved)
            for _ in nodes:
                graph.node.pop()
            for _ in inits:
                graph.initializer.pop()


def _kl(logits: np.ndarray, ref: np.ndarray) -> float:
    """Mean KL(softmax(ref) || softmax(logits)) over the images."""
    def log_softmax(z):
        z = z - z.max(1, keepdims=True)
        return z - np.log(np.exp(z).sum(1, keepdims=True))
    lp, lq = log_softmax(ref.astype(np.float64)), log_softmax(logits.astype(np.float64))
    return float((np.exp(lp) * (lp - lq)).sum(1).mean())


def rank_layers(qdq: Path, fp32: Path, x: np.ndarray, ref: np.ndarray) -> list[str]:
    """Quantized weighted layers of `qdq`, most sensitive first: by the KL divergence from the fp32 predictions
    (`ref`) when that layer alone is quantized in the fp32 model `fp32`."""
    one = OneLayer(qdq, fp32)
    scores = {name: _kl(one.logits(name, x), ref) for name in one.layers}
    return sorted(scores, key=scores.get, reverse=True)


__all__ = ["RECIPES", "Int8Job", "rank_layers"]
