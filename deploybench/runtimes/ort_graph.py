"""What ONNX Runtime's CPU provider really computes in, read from the graph it optimized at load.

The optimized graph (SessionOptions.optimized_model_filepath, weights written to an external file) is read with
a protobuf wire-format reader of the few ONNX fields needed, not with the `onnx` package: importing onnx in a
bench worker costs ~1 s and ~10 MiB of peak memory that the row would report as the runtime's own.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional

from .base import compute_label

INT8_OPS = {"QLinearConv", "QLinearMatMul", "QGemm", "ConvInteger", "MatMulInteger", "MatMulIntegerToFloat",
            "DynamicQuantizeMatMul", "QAttention"}
FLOAT_OPS = {"Conv", "FusedConv", "NhwcFusedConv", "ConvTranspose", "MatMul", "FusedMatMul", "Gemm", "FusedGemm"}
ONNX_TYPES = {1: "fp32", 10: "fp16", 16: "bf16"}   # TensorProto.DataType


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, i


def _fields(buf) -> Iterator[tuple[int, object]]:
    """(field number, value) of one protobuf message: ints for varints, memoryviews for the rest."""
    buf, i = memoryview(buf), 0
    while i < len(buf):
        key, i = _varint(buf, i)
        wire = key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i:i + n], i + n
        elif wire in (1, 5):
            n = 8 if wire == 1 else 4
            value, i = buf[i:i + n], i + n
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield key >> 3, value


def _sub(msg, number: int) -> list:
    return [v for n, v in _fields(msg) if n == number]


def _text(msg, number: int) -> list[str]:
    return [bytes(v).decode() for v in _sub(msg, number)]


def read_graph(path: str | Path) -> tuple[list[dict], dict[str, int]]:
    """Nodes [{op_type, inputs, outputs, to (Cast target or None)}] and element types {tensor: ONNX type} of the
    initializers and graph inputs of the ONNX model at `path` (ModelProto.graph)."""
    graph = _sub(Path(path).read_bytes(), 7)[0]
    nodes, types = [], {}
    for n, v in _fields(graph):
        if n == 1:      # NodeProto: input 1, output 2, op_type 4, attribute 5 (AttributeProto: name 1, i 3)
            attrs = {_text(a, 1)[0]: (_sub(a, 3) or [None])[0] for a in _sub(v, 5)}
            nodes.append({"op_type": _text(v, 4)[0], "inputs": _text(v, 1), "outputs": _text(v, 2),
                          "to": attrs.get("to")})
        elif n == 5:    # TensorProto: data_type 2, name 8
            types[_text(v, 8)[0]] = (_sub(v, 2) or [0])[0]
        elif n == 11:   # ValueInfoProto: name 1, type 2 -> TypeProto.tensor_type 1 -> elem_type 1
            tensor = [t for tp in _sub(v, 2) for t in _sub(tp, 1)]
            types[_text(v, 1)[0]] = (_sub(tensor[0], 1) or [0])[0] if tensor else 0
    return nodes, types


def graph_precision(path: str | Path) -> Optional[str]:
    """compute_label of an optimized ONNX graph: quantized kernels count as int8; float convolutions and matmuls
    by the element type of their weight input, traced back through Cast, DequantizeLinear (its scale's type) and
    layout nodes (their first input)."""
    nodes, types = read_graph(path)
    producer = {o: n for n in nodes for o in n["outputs"]}

    def elem_type(name: str) -> Optional[int]:
        for _ in range(len(nodes) + 1):
            if name in types:
                return types[name]
            node = producer.get(name)
            if node is None or not node["inputs"]:
                return None
            if node["op_type"] == "Cast":
                return node["to"]
            name = node["inputs"][1 if node["op_type"] == "DequantizeLinear" else 0]
        return None

    counts: dict[str, int] = {}
    for n in nodes:
        if n["op_type"] in INT8_OPS:
            kind = "int8"
        elif n["op_type"] in FLOAT_OPS and len(n["inputs"]) > 1:
            kind = ONNX_TYPES.get(elem_type(n["inputs"][1]), "fp32")
        else:
            continue
        counts[kind] = counts.get(kind, 0) + 1
    return compute_label(counts)
