"""fp32 ONNX -> INT8 QDQ ONNX by static calibration on real training images.

Weights: QInt8 per-channel symmetric; activations: QInt8 symmetric. Symmetric int8 Q/DQ is what TensorRT's
explicit quantization accepts, and ORT CPU / OpenVINO run it too.
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process

from ..io import atomic_path
from .onnx import INPUT

METHODS = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
           "percentile": CalibrationMethod.Percentile}


class _Batches(CalibrationDataReader):
    def __init__(self, images: np.ndarray, batch_size: int = 16):
        self.batches = iter([{INPUT: np.ascontiguousarray(images[i:i + batch_size], dtype=np.float32)}
                             for i in range(0, len(images), batch_size)])

    def get_next(self):
        return next(self.batches, None)


def quantize_int8(src: Path, dst: Path, images: np.ndarray, method: str = "minmax") -> None:
    """Statically quantize `src` to QDQ int8 at `dst`, calibrated on `images` (NCHW float32, preprocessed)."""
    logging.getLogger("root").setLevel(logging.ERROR)   # quant_pre_process / quantize_static chatter
    with tempfile.TemporaryDirectory() as tmpdir:
        pre = Path(tmpdir) / "pre.onnx"
        try:
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        except Exception:   # pre-processing is an optimization; quantize the exported graph as it is
            pre = Path(src)
        with atomic_path(dst) as tmp:
            out = tmp.with_suffix(".onnx")
            try:
                quantize_static(str(pre), str(out), _Batches(images), quant_format=QuantFormat.QDQ,
                                per_channel=True, weight_type=QuantType.QInt8, activation_type=QuantType.QInt8,
                                calibrate_method=METHODS[method],
                                extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
                out.replace(tmp)
            finally:
                out.unlink(missing_ok=True)
