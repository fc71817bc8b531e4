"""PyTorch -> ONNX fp32: TorchScript exporter (the dynamo exporter needs onnxscript), dynamic batch, onnxslim."""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import onnx
import onnxslim
import torch

from ..io import atomic_path

INPUT, OUTPUT = "input", "logits"
log = logging.getLogger(__name__)


def export_onnx(model: torch.nn.Module, path: Path, image_size: int, opset: int = 17, in_chans: int = 3) -> None:
    """Write `model` as fp32 ONNX (input "input" NCHW, output "logits", batch axis dynamic), slimmed and checked."""
    model = model.float().eval()
    example = torch.randn(1, in_chans, image_size, image_size)
    _freeze_same_padding(model, example)
    axes = {INPUT: {0: "batch"}, OUTPUT: {0: "batch"}}
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.inference_mode(False), torch.no_grad():
            torch.onnx.export(model, (example,), str(tmp), input_names=[INPUT], output_names=[OUTPUT],
                              opset_version=opset, dynamic_axes=axes, do_constant_folding=True, dynamo=False)
        raw = onnx.load(str(tmp))
        slim = onnxslim.slim(raw)
        if not _same_outputs(raw, slim, example.shape):
            log.warning("%s: onnxslim changed the model's outputs; keeping the unslimmed graph", Path(path).name)
            slim = raw
        onnx.checker.check_model(slim, full_check=True)
        onnx.save(slim, str(tmp))


def _freeze_same_padding(model: torch.nn.Module, example: torch.Tensor) -> None:
    """timm's TF-'same' convolutions pad by shape arithmetic at run time; the input size is fixed per run, so
    freeze each one's padding to constants. The graph then has no shape arithmetic, which onnxslim and the fp16
    converter mishandle (tf_efficientnet_lite0 at 56 px came out 99 % off)."""
    import functools

    import torch.nn.functional as F
    from timm.layers.conv2d_same import Conv2dSame
    from timm.layers.padding import get_same_padding

    sizes: dict = {}
    convs = [m for m in model.modules() if isinstance(m, Conv2dSame)]
    hooks = [m.register_forward_pre_hook(lambda mod, args: sizes.__setitem__(mod, args[0].shape[-2:]))
             for m in convs]
    with torch.no_grad():
        model(example)
    for h in hooks:
        h.remove()

    def static_forward(conv, pad, x):
        return F.conv2d(F.pad(x, pad), conv.weight, conv.bias, conv.stride, 0, conv.dilation, conv.groups)

    for m, (ih, iw) in sizes.items():
        ph = get_same_padding(ih, m.kernel_size[0], m.stride[0], m.dilation[0])
        pw = get_same_padding(iw, m.kernel_size[1], m.stride[1], m.dilation[1])
        m.forward = functools.partial(static_forward, m, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))


def _same_outputs(a: onnx.ModelProto, b: onnx.ModelProto, shape, rtol: float = 1e-4) -> bool:
    """Whether two graphs give the same logits in ORT on a random batch of 2 (onnxslim has broken
    TF-'same'-padding models at some input sizes, e.g. tf_efficientnet_lite0 at 56 px)."""
    import numpy as np
    import onnxruntime as ort

    x = np.random.default_rng(0).standard_normal((2, *shape[1:])).astype(np.float32)
    ya, yb = (ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {INPUT: x})[0]
              for m in (a, b))
    return bool(np.abs(ya - yb).max() <= rtol * max(np.abs(ya).max(), 1e-12))
