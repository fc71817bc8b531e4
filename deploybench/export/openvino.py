"""ONNX -> OpenVINO IR (model.<prec>.xml/.bin), and NNCF post-training INT8 quantization of the fp32 model."""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
import numpy as np


def save_ir(model, xml: Path) -> None:
    """Save an ov.Model as IR at `xml` (+ .bin), weights as they are (compress_to_fp16=False). Atomic: the .bin
    is moved in first, the .xml (which marks the pair complete) last."""
    import openvino as ov

    xml = Path(xml)
    with tempfile.TemporaryDirectory(dir=xml.parent, prefix=".ir.") as tmpdir:
        tmp_xml = Path(tmpdir) / xml.name
        ov.save_model(model, str(tmp_xml), compress_to_fp16=False)
        os.replace(tmp_xml.with_suffix(".bin"), xml.with_suffix(".bin"))
        os.replace(tmp_xml, xml)


def to_ir(src: Path, xml: Path) -> None:
    """Convert `src` ONNX to IR at `xml` (+ .bin), fp32 staying fp32."""
    import openvino as ov

    save_ir(ov.convert_model(str(src)), xml)


# Activations that can be negative by design (Sigmoid, Erf, Tanh: SiLU and GELU as ONNX decomposes them): NNCF's
# MIXED preset (asymmetric activations) is for these (docs.openvino.ai, "Post-training Quantization", preset);
# ReLU-family models take PERFORMANCE (symmetric).
SIGNED_ACTIVATIONS = {"Swish", "HSwish", "Gelu", "Elu", "PRelu", "Mish", "SoftPlus", "Selu", "Sigmoid", "Erf", "Tanh"}


def nncf_preset(model):
    """NNCF's preset for an ov.Model: MIXED (asymmetric activations) when it has an activation of
    SIGNED_ACTIVATIONS, else PERFORMANCE (symmetric activations, zero points 0). On the CPU plugin the
    asymmetric form costs the zero-point compensation and keeps depthwise convolutions off oneDNN's brgemm
    kernels: the quickstart's efficientnet_lite0/1/2 (ReLU6) ran 1.16-1.25x faster than fp32 with MIXED,
    1.36-1.39x with PERFORMANCE, at the same validation top-1 within its standard error."""
    import nncf

    signed = any(op.get_type_name() in SIGNED_ACTIVATIONS for op in model.get_ops())
    return nncf.QuantizationPreset.MIXED if signed else nncf.QuantizationPreset.PERFORMANCE


def nncf_quantize(src: Path, images: np.ndarray, exclude: list[str] = (), fast: bool = False):
    """NNCF post-training INT8 (symmetric per-channel weights, activations as `nncf_preset` says; bias
    correction, or its `fast` variant: on the quickstart's efficientnet_lite0 the fast one lost 3.4 val points,
    the full one none, at 2x the build time) of ONNX `src` converted to OpenVINO, calibrated on `images`; layers
    named in `exclude` (ONNX node names; OpenVINO names a biased convolution `<name>/WithoutBiases`) stay fp32.
    Raises when nothing was quantized."""
    import nncf
    import openvino as ov

    logging.getLogger("nncf").setLevel(logging.ERROR)
    model = ov.convert_model(str(src))
    names = {op.get_friendly_name() for op in model.get_ops()}
    ignored = [n for e in exclude for n in (e, f"{e}/WithoutBiases") if n in names]
    data = nncf.Dataset([images[i:i + 32] for i in range(0, len(images), 32)])
    q = nncf.quantize(model, data, preset=nncf_preset(model), subset_size=len(images),
                      fast_bias_correction=fast, ignored_scope=nncf.IgnoredScope(names=ignored, validate=False))
    if not any(op.get_type_name() == "FakeQuantize" for op in q.get_ops()):
        raise RuntimeError(f"NNCF quantized no layer of {Path(src).name}")
    return q


def compiled_logits(model, images: np.ndarray, threads: int = 0) -> np.ndarray:
    """Logits of an ov.Model on the CPU plugin in f32 inference precision (int8 where quantized), batches of 100,
    on `threads` threads (0: all cores)."""
    import openvino as ov

    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32",
                                                      "INFERENCE_NUM_THREADS": threads})
    return np.concatenate([np.asarray(compiled(images[i:i + 100])[0]) for i in range(0, len(images), 100)])
