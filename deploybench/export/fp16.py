"""fp32 ONNX -> fp16 ONNX (onnxconverter-common) with fp32 I/O and numerically fragile ops kept in fp32."""
from __future__ import annotations

import warnings
from collections import defaultdict
from pathlib import Path

import onnx
from onnxconverter_common import float16

from ..io import atomic_path

# Reductions, normalizations and transcendental ops overflow or lose too much in fp16 (and several have no
# fp16 kernels in ORT CPU / OpenVINO); they stay fp32 behind Cast nodes.
KEEP_FP32 = ["LayerNormalization", "GroupNormalization", "InstanceNormalization", "Softmax", "LogSoftmax",
             "ReduceMean", "ReduceSum", "ReduceL2", "Pow", "Sqrt", "Reciprocal", "Div", "Erf", "Exp", "Log",
             "Range", "Resize", "TopK", "NonMaxSuppression", "RandomUniformLike", "RandomNormalLike"]


def _unshare(model: onnx.ModelProto, block: set[str]) -> None:
    """Give fp32-kept nodes their own copy of initializers they share with converted nodes (exporters and
    onnxslim deduplicate equal tensors, e.g. zero biases of a Conv and a LayerNorm); otherwise the shared
    tensor stays fp32 and the converted node gets mixed input types."""
    inits = {t.name: t for t in model.graph.initializer}
    uses = defaultdict(list)
    for node in model.graph.node:
        for k, name in enumerate(node.input):
            if name in inits:
                uses[name].append((node, k))
    for name, users in uses.items():
        if len({node.op_type in block for node, _ in users}) < 2:
            continue
        copy = onnx.TensorProto()
        copy.CopyFrom(inits[name])
        copy.name = f"{name}_fp32"
        model.graph.initializer.append(copy)
        for node, k in users:
            if node.op_type in block:
                node.input[k] = copy.name


def to_fp16(src: Path, dst: Path) -> None:
    """Convert `src` to fp16 weights and activations at `dst`; inputs/outputs stay float32."""
    model = onnx.load(str(src))
    del model.graph.value_info[:]   # stale fp32 annotations (onnxslim) confuse the converter's Cast insertion
    block = sorted(set(float16.DEFAULT_OP_BLOCK_LIST) | set(KEEP_FP32))
    _unshare(model, set(block))
    with warnings.catch_warnings():   # one warning per tiny weight clamped to the fp16 range
        warnings.simplefilter("ignore", UserWarning)
        half = float16.convert_float_to_float16(model, keep_io_types=True, op_block_list=block)
    onnx.checker.check_model(half)
    with atomic_path(dst) as tmp:
        onnx.save(half, str(tmp))
