"""PyTorch -> ONNX fp32: TorchScript exporter (the dynamo exporter needs onnxscript), dynamic batch, onnxslim."""
from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import onnxslim
import torch

from ..io import atomic_path

INPUT, OUTPUT = "input", "logits"


def export_onnx(model: torch.nn.Module, path: Path, image_size: int, opset: int = 17, in_chans: int = 3) -> None:
    """Write `model` as fp32 ONNX (input "input" NCHW, output "logits", batch axis dynamic), slimmed and checked."""
    model = model.float().eval()
    example = torch.randn(1, in_chans, image_size, image_size)
    axes = {INPUT: {0: "batch"}, OUTPUT: {0: "batch"}}
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.inference_mode(False), torch.no_grad():
            torch.onnx.export(model, (example,), str(tmp), input_names=[INPUT], output_names=[OUTPUT],
                              opset_version=opset, dynamic_axes=axes, do_constant_folding=True, dynamo=False)
        slim = onnxslim.slim(onnx.load(str(tmp)))
        onnx.checker.check_model(slim, full_check=True)
        onnx.save(slim, str(tmp))
