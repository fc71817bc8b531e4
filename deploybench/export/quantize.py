"""fp32 ONNX -> INT8 Q/DQ ONNX with ORT's `quantize_static`, calibrated on real training images.

Two recipes (deploybench.export.int8 says which target each is made for):
  s8s8: int8 symmetric activations, int8 per-channel symmetric weights (TensorRT's explicit quantization form).
  u8s8: uint8 asymmetric activations, int8 per-channel symmetric weights (ORT CPU's x86 int8 kernels).
Calibration ranges depend only on the fp32 graph and the method, so they are cached in a JSON file and shared by
both recipes and by every re-quantization with layers kept in fp32 (`exclude`).
"""
from __future__ import annotations

import inspect
import logging
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process

from ..io import atomic_path
from .onnx import INPUT

METHODS = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
           "percentile": CalibrationMethod.Percentile}
ACTIVATIONS = {"s8s8": (QuantType.QInt8, True), "u8s8": (QuantType.QUInt8, False)}   # (type, symmetric)
WEIGHTED = ("Conv", "ConvTranspose", "Gemm", "MatMul")   # ops whose quantization a fallback can revert
# ORT releases without a calibration cache re-calibrate on every call (slower, same ranges)
_CACHE = "calibration_cache_path" in inspect.signature(quantize_static).parameters


class _Batches(CalibrationDataReader):
    def __init__(self, images: np.ndarray, batch_size: int = 32):
        self.batches = iter([{INPUT: np.ascontiguousarray(images[i:i + batch_size], dtype=np.float32)}
                             for i in range(0, len(images), batch_size)])

    def get_next(self):
        return next(self.batches, None)


@contextmanager
def _quiet_ort():
    """ORT's quantization tools log their chatter through the root logger: raise its level for the call only
    (setting it for good, as 0.1 did, silenced every later warning of the process, e.g. skipped images)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def preprocess(src: Path, dst: Path) -> Path:
    """ORT's quantization pre-processing (shape inference, graph optimization) at `dst`; `src` if it fails."""
    try:
        with _quiet_ort():
            quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)
        return Path(dst)
    except Exception:   # pre-processing is an optimization; quantize the exported graph as it is
        return Path(src)


def quantize_int8(src: Path, dst: Path, images: np.ndarray, method: str = "minmax", recipe: str = "s8s8",
                  exclude: tuple[str, ...] = (), cache: Path | None = None) -> None:
    """Statically quantize `src` to Q/DQ `recipe` at `dst`, calibrated on `images` (NCHW float32, preprocessed)
    or on the ranges cached at `cache`; nodes named in `exclude` stay fp32. Raises when nothing was quantized."""
    act, symmetric = ACTIVATIONS[recipe]
    with atomic_path(dst) as tmp:
        out = tmp.with_suffix(".onnx")
        try:
            with _quiet_ort():
                quantize_static(str(src), str(out), _Batches(images), quant_format=QuantFormat.QDQ,
                                per_channel=True, weight_type=QuantType.QInt8, activation_type=act,
                                calibrate_method=METHODS[method], nodes_to_exclude=list(exclude),
                                extra_options={"ActivationSymmetric": symmetric, "WeightSymmetric": True,
                                               # with layers kept in fp32, a Relu/Clip folded into the range of
                                               # a Q/DQ that an fp32 layer bypasses would be lost: keep them
                                               "QDQKeepRemovableActivations": bool(exclude)},
                                **({"calibration_cache_path": cache} if cache and _CACHE else {}))
            model = onnx.load(str(out))
            if not any(n.op_type == "QuantizeLinear" for n in model.graph.node):
                raise RuntimeError(f"ORT quantize_static quantized no node of {Path(src).name}")
            if exclude:
                onnx.save(fp32_inputs(model, set(exclude)), str(tmp))
            else:
                out.replace(tmp)
        finally:
            out.unlink(missing_ok=True)


def fp32_inputs(model, names: set):
    """`model` with the layers in `names` reading their activations in fp32: each input that arrives through a
    QuantizeLinear -> DequantizeLinear pair is rewired to the tensor before it (pairs left unused are removed).
    Without this a layer kept in fp32 is not: quantize_static keeps Q/DQ on its input, and ORT's graph optimizer
    (WeightBiasQuantization, basic level) then re-quantizes its fp32 weights per tensor to run it as an int8 node —
    on the quickstart's efficientnet_lite1, keeping blocks.0.0.conv_dw "in fp32" cost 21.6 val top-1 points
    instead of saving any (measured; a depthwise kernel does not survive per-tensor int8)."""
    graph = model.graph
    producer = {o: n for n in graph.node for o in n.output}
    for node in graph.node:
        if node.name not in names:
            continue
        for k, name in enumerate(node.input):
            dq = producer.get(name)
            q = producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
            if q is not None and q.op_type == "QuantizeLinear":
                node.input[k] = q.input[0]
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    while True:     # drop Q/DQ nodes whose outputs nothing reads any more (DQ first, then its Q)
        dead = [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")
                and not any(o in used for o in n.output)]
        if not dead:
            return model
        for n in dead:
            graph.node.remove(n)
        used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
