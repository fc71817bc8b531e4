"""torchvision's ImageNet weights (the ones the seed study fine-tuned): `weights: torchvision`.

These build torchvision's own architecture (not timm's port), load the weights enum entry through torchvision's
builder (which also applies its legacy key fixes, e.g. DenseNet's), then replace the 1000-class head.
Offline: torchvision reads `<torch hub dir>/checkpoints/<file name of the weights URL>` when it is there.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..errors import DeployBenchError

# registry name -> (torchvision builder, weights enum entry); the entries are the ones whose ImageNet top-1
# equals the paper's Table 2 (tests/test_paper.py checks it)
TORCHVISION_WEIGHTS = {
    "resnet50": ("resnet50", "ResNet50_Weights.IMAGENET1K_V1"),
    "convnext_tiny": ("convnext_tiny", "ConvNeXt_Tiny_Weights.IMAGENET1K_V1"),
    "swin_tiny": ("swin_t", "Swin_T_Weights.IMAGENET1K_V1"),
    "swinv2_tiny": ("swin_v2_t", "Swin_V2_T_Weights.IMAGENET1K_V1"),
    "efficientnetv2_s": ("efficientnet_v2_s", "EfficientNet_V2_S_Weights.IMAGENET1K_V1"),
    "densenet161": ("densenet161", "DenseNet161_Weights.IMAGENET1K_V1"),
    "mobilenetv3_large": ("mobilenet_v3_large", "MobileNet_V3_Large_Weights.IMAGENET1K_V2"),
    "regnety_032": ("regnet_y_3_2gf", "RegNet_Y_3_2GF_Weights.IMAGENET1K_V2"),
    "resnext50_32x4d": ("resnext50_32x4d", "ResNeXt50_32X4D_Weights.IMAGENET1K_V2"),
    "shufflenetv2_x2_0": ("shufflenet_v2_x2_0", "ShuffleNet_V2_X2_0_Weights.IMAGENET1K_V1"),
}


def weights_entry(name: str):
    """The torchvision weights enum entry for a registry name."""
    import torchvision

    if name not in TORCHVISION_WEIGHTS:
        raise DeployBenchError(f"backbone '{name}': no torchvision weights (available for "
                               f"{', '.join(TORCHVISION_WEIGHTS)})")
    return torchvision.models.get_weight(TORCHVISION_WEIGHTS[name][1])


def imagenet_top1(entry) -> Optional[float]:
    """ImageNet-1K acc@1 from a torchvision weights entry's metadata (shipped in torchvision's code)."""
    return entry.meta.get("_metrics", {}).get("ImageNet-1K", {}).get("acc@1")


def cache_file(entry) -> str:
    return f"{torch.hub.get_dir()}/checkpoints/{entry.url.rsplit('/', 1)[-1]}"


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Swap the model's last nn.Linear (torchvision's classifier) for a fresh `num_classes` one."""
    name, head = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]
    if head.out_features != num_classes:
        parent_name, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent_name), attr, nn.Linear(head.in_features, num_classes))
    return model


def torchvision_model(name: str, num_classes: int, pretrained: bool) -> nn.Module:
    """torchvision's architecture for `name`, with its ImageNet weights when `pretrained`, head replaced."""
    import torchvision

    entry = weights_entry(name)
    try:
        model = torchvision.models.get_model(TORCHVISION_WEIGHTS[name][0], weights=entry if pretrained else None)
    except Exception as e:   # offline without the file in the cache, or a bad cached file
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DeployBenchError(f"backbone '{name}': cannot load torchvision weights {entry} ({msg}); run online "
                               f"once, or place {entry.url} at {cache_file(entry)}") from None
    return replace_head(model, num_classes)
