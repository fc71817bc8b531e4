"""fp32 ONNX -> U8S8 Q/DQ ONNX with NNCF's ONNX backend: post-training quantization with bias correction.

NNCF (preset MIXED: per-channel symmetric int8 weights, per-tensor activations) corrects each quantized layer's
bias for the shift int8 rounding puts on its output mean, which ORT's `quantize_static` does not; on the
quickstart's efficientnet_lite0 that alone met a 1-point budget with no layer kept in fp32 (min-max without it
needed 3). NNCF writes int8 zero points for activations that can be negative; ORT's x86 kernels are built for
uint8 activations (an int8-activation graph ran 6x slower than fp32 there), so those Q/DQ pairs are rewritten
to uint8 (`uint8_activations`), which is exact: q + 128 with zero point + 128 represents the same values.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from ..io import atomic_path
from .onnx import INPUT


def quantize_nncf_onnx(src: Path, dst: Path, images: np.ndarray, exclude: tuple[str, ...] = ()) -> None:
    """NNCF-quantize ONNX `src` (bias correction, calibrated on `images`) into a U8S8 Q/DQ model at `dst`; nodes
    named in `exclude` stay fp32. Raises when nothing was quantized."""
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, QuantizationParameters

    logging.getLogger("nncf").setLevel(logging.ERROR)
    model = onnx.load(str(src))
    names = {n.name for n in model.graph.node}
    data = nncf.Dataset([images[i:i + 32] for i in range(0, len(images), 32)], lambda b: {INPUT: b})
    q = nncf.quantize(model, data, preset=nncf.QuantizationPreset.MIXED, subset_size=len(images),
                      fast_bias_correction=False,
                      ignored_scope=nncf.IgnoredScope(names=[e for e in exclude if e in names], validate=False),
                      # per-channel activation scales (NNCF's choice for some depthwise inputs) keep ORT from
                      # fusing Q/DQ into QLinearConv: per-tensor activations
                      advanced_parameters=AdvancedQuantizationParameters(
                          activations_quantization_params=QuantizationParameters(per_channel=False)))
    if not any(n.op_type == "QuantizeLinear" for n in q.graph.node):
        raise RuntimeError(f"NNCF quantized no node of {Path(src).name}")
    with atomic_path(dst) as tmp:
        onnx.save(uint8_activations(q), str(tmp))


def uint8_activations(model):
    """`model` with every int8 activation QuantizeLinear/DequantizeLinear pair made uint8: zero point + 128 (the
    quantized values move by 128 with it, so dequantized values are unchanged). Weights stay int8."""
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    moved: dict[str, str] = {}
    for node in graph.node:
        if node.op_type != "QuantizeLinear" or node.input[0] in inits or len(node.input) < 3:
            continue
        zp = inits.get(node.input[2])
        if zp is None or zp.data_type != onnx.TensorProto.INT8:
            continue
        if zp.name not in moved:
            u8 = (numpy_helper.to_array(zp).astype(np.int16) + 128).astype(np.uint8)
            graph.initializer.append(numpy_helper.from_array(u8, f"{zp.name}_uint8"))
            moved[zp.name] = f"{zp.name}_uint8"
        for reader in graph.node:
            if reader.op_type == "DequantizeLinear" and reader.input[0] == node.output[0]:
                reader.input[2] = moved[zp.name]
        node.input[2] = moved[zp.name]
    outputs = {n.output[0] for n in graph.node if n.op_type == "QuantizeLinear"}
    kept = [v for v in graph.value_info if v.name not in outputs]    # their recorded type was int8
    del graph.value_info[:]
    graph.value_info.extend(kept)
    return model
