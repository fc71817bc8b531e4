"""The seed study, exactly: the shipped figures, paper.yaml against them line by line, torchvision's and WaveMix's
weights, the count check, the 1,980-run dry run, and the paper's column in a real report."""
from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from deploybench import paper
from deploybench.backbones import create_backbone
from deploybench.backbones.registry import architecture, imagenet_top1_by_source, normalization
from deploybench.backbones.torchvision_weights import TORCHVISION_WEIGHTS, cache_file, weights_entry
from deploybench.cli import cli
from deploybench.config import ExpectedCounts, from_dict, load_config
from deploybench.errors import DeployBenchError

ROOT = Path(__file__).resolve().parent.parent
PAPER_YAML = ROOT / "configs" / "paper.yaml"
SHARED = ROOT.parent / "shared" / "paper"      # the transcription the package copy came from, when present


def shipped(name: str) -> list[dict]:
    return paper.read_rows(name)


@pytest.mark.parametrize("name", paper.FILES)
def test_shipped_figures_equal_the_shared_transcription(name):
    if not (SHARED / name).exists():
        pytest.skip(f"{SHARED / name} not here: nothing to cross-check")
    assert shipped(name) == list(csv.DictReader((SHARED / name).read_text().splitlines()))


def test_shipped_figures_are_complete():
    assert len(paper.backbones()) == 11 and len(paper.datasets()) == 20
    assert len(shipped(paper.FILES[2])) == 363
    tiny = {f.source: f.top1 for f in paper.figures("resnet50", "tiny_imagenet", 1.0)}
    assert tiny == {"Table 4": 75.33, "Table 7": 76.30}          # the two tables disagree: both kept
    assert {f.top1 for f in paper.figures("wavemix_192_16_l3", "Tiny ImageNet", 1.0)} == {76.30, 75.33}
    assert paper.figures("wavemix", "tiny_imagenet", 1.0) == []   # our level-1 WaveMix-288 is not the paper's
    assert paper.dataset_key("CIFAR-10") == paper.dataset_key("cifar_10") == "cifar10"
    assert paper.paper_dataset("flowers102") == "Oxford Flowers-102"
    assert paper.paper_backbone("regnety_032") == "RegNetY-3.2GF"


def test_paper_yaml_matches_tables_2_and_3_line_by_line():
    cfg = load_config(PAPER_YAML)
    table3 = shipped(paper.FILES[1])
    assert len(cfg.datasets) == len(table3) == 20
    for ds, row in zip(cfg.datasets, table3):
        assert (ds.name, ds.domain, ds.path) == (row["dataset"], row["domain"], f"data/{row['dataset']}")
        assert ds.expected == ExpectedCounts(int(row["train_images"]), int(row["test_images"]), int(row["classes"]))
        no_aug = ds.name.startswith("breakhis") or ds.name == "galaxy10_decals"
        assert ds.augment == ("none" if no_aug else None), ds.name
        assert ds.image_size == 224 and ds.kind == "imagefolder"
    table2 = shipped(paper.FILES[0])
    assert [b.name for b in cfg.backbones] == [paper.registry_name(r["backbone"]) for r in table2]
    for b, row in zip(cfg.backbones, table2):
        if row["weights_in_paper"] == "torchvision":
            assert b.weights == "torchvision", b.name
        else:
            assert b.weights.endswith(".pth"), b.name              # WaveMix: the authors' file, supplied by the user
    t = cfg.train
    assert (t.weight_decay, t.early_stopping_patience, t.augment, t.amp, t.mode) == \
        (0.01, 10, "trivialaugment", True, "finetune")
    assert cfg.fractions == [0.01, 0.1, 1.0] and cfg.seeds == [0, 1, 2]
    assert "BreakHis value is YOUR choice" in PAPER_YAML.read_text()


def test_torchvision_weights_are_the_papers():
    """Each weights entry is the one of Table 2: its ImageNet top-1 (torchvision's metadata) and parameters."""
    for row in shipped(paper.FILES[0]):
        name = paper.registry_name(row["backbone"])
        if row["weights_in_paper"] != "torchvision":
            assert "torchvision" not in imagenet_top1_by_source(name)
            continue
        assert round(imagenet_top1_by_source(name)["torchvision"], 2) == float(row["imagenet_top1"]), name
        assert abs(weights_entry(name).meta["num_params"] / 1e6 - float(row["params_m"])) < 0.06, name
        assert architecture(name, "torchvision") == "torchvision"
        assert normalization(name, "torchvision") == ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    assert set(TORCHVISION_WEIGHTS) == {paper.registry_name(r["backbone"]) for r in shipped(paper.FILES[0])
                                        if r["weights_in_paper"] == "torchvision"}
    with pytest.raises(DeployBenchError, match="not available"):
        create_backbone("resnet18", 3, weights="torchvision")


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """A torch hub cache holding a (randomly initialised) torchvision MobileNetV3-Large file, as if downloaded."""
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    torch.manual_seed(0)
    ref = torchvision.models.mobilenet_v3_large().state_dict()
    target = Path(cache_file(weights_entry("mobilenetv3_large")))
    target.parent.mkdir(parents=True)
    torch.save(ref, target)
    return ref


def test_torchvision_weights_load_into_torchvisions_architecture(torch_home):
    import torchvision

    model = create_backbone("mobilenetv3_large", 7, weights="torchvision")
    assert isinstance(model, torchvision.models.MobileNetV3)
    sd = model.state_dict()
    assert sd["classifier.3.weight"].shape == (7, 1280)
    for k, v in torch_home.items():
        if not k.startswith("classifier.3."):
            assert torch.equal(sd[k], v), k
    again = create_backbone("mobilenetv3_large", 7, weights="none", arch="torchvision")   # checkpoint reload
    assert again.load_state_dict(sd) is not None and type(again) is type(model)


def test_torchvision_weights_bad_cache_file_names_it(torch_home):
    Path(cache_file(weights_entry("mobilenetv3_large"))).write_bytes(b"not a checkpoint")
    with pytest.raises(DeployBenchError, match="mobilenet_v3_large-5c1a4163.pth"):
        create_backbone("mobilenetv3_large", 3, weights="torchvision")


def test_wavemix_level3_takes_its_authors_layout_from_a_file(tmp_path):
    from deploybench.backbones.wavemix_l3 import WaveMixL3

    torch.manual_seed(0)
    authors = WaveMixL3().state_dict()          # the authors' key names: conv.*, layers.N.feedforward1-3.*, pool.2.*
    assert {"conv.0.weight", "conv.4.running_var", "layers.15.reduction.weight", "layers.0.feedforward3.4.weight",
            "pool.2.weight"} <= set(authors)
    assert abs(sum(v.numel() for k, v in authors.items() if "running" not in k and "num_batches" not in k) / 1e6
               - paper.backbones()["wavemix"].params_m) < 0.1
    path = tmp_path / "wavemix_192_16_level3_imagenet.pth"
    torch.save(authors, path)
    model = create_backbone("wavemix_192_16_l3", 4, weights=str(path))
    assert torch.equal(model.state_dict()["layers.7.feedforward2.0.weight"], authors["layers.7.feedforward2.0.weight"])
    assert model.state_dict()["pool.2.weight"].shape == (4, 192)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 4)


def image_folder(root: Path, splits: dict[str, int], classes=("a", "b", "c"), size: int = 32) -> Path:
    """A real ImageFolder of small PNGs: per split, `n` images per class, class-dependent colours plus noise."""
    rng = np.random.default_rng(0)
    for split, n in splits.items():
        for ci, c in enumerate(classes):
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                base = np.zeros((size, size, 3), np.uint8) + np.uint8(60 * ci + 40)
                noise = rng.integers(0, 40, (size, size, 3), dtype=np.uint8)
                Image.fromarray(base + noise).save(root / split / c / f"{i}.png")
    return root


def test_count_check_warns_with_both_numbers(tmp_path, caplog):
    from deploybench.data import get_dataset
    from deploybench.sweep.plan import dataset_check

    path = image_folder(tmp_path / "flowers102", {"train": 4, "val": 1, "test": 2})
    ds = from_dict({"name": "x", "datasets": [{"name": "flowers102", "path": str(path),
                                               "expected": {"train": 2040, "test": 6149, "classes": 102}}],
                    "backbones": ["resnet18"]}).datasets[0]
    with caplog.at_level(logging.WARNING, logger="deploybench.data"):
        assert len(get_dataset(ds, "train")) == 12          # a warning, not an error
    text = caplog.text
    assert "15 train images (train/ + val/), expected 2040" in text and "6 test images, expected 6149" in text
    assert "3 classes, expected 102" in text
    assert "WARNING" in dataset_check(ds) and "expected 2040" in dataset_check(ds)
    ds.expected = ExpectedCounts(train=15, test=6, classes=3)
    assert dataset_check(ds).endswith("matches expected")


def test_plan_lists_the_1980_runs_and_checks_folders(tmp_path, monkeypatch):
    image_folder(tmp_path / "data" / "dtd", {"train": 2, "test": 1})
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["plan", "-c", str(PAPER_YAML)])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    run_lines = [line for line in lines[1:] if line.split()[-1:] in (["0"], ["1"], ["2"]) and "-s" in line]
    assert len(run_lines) == len({line.split()[0] for line in run_lines}) == 1980
    assert "1980 runs = 11 backbones x 20 datasets x 3 fractions x 3 seeds (nothing trained)" in res.output
    dtd = next(line for line in lines if line.strip().startswith("dtd:"))
    assert "train 6, test 3, classes 3" in dtd and "expected 1880" in dtd and "expected 47" in dtd
    assert "data/cifar10 not found" in res.output
    assert not (tmp_path / "checkpoints").exists()


def synthetic_rows() -> list[dict]:
    rows = []
    for seed, (tiny, c10) in enumerate([(74.0, 94.0), (75.0, 95.5), (76.0, 95.0)]):
        for ds, top1 in (("tiny_imagenet", tiny), ("cifar10", c10)):
            base = dict(status="ok", runtime="torch", precision="fp32", pretrained=True, backbone="resnet50",
                        dataset=ds, fraction=1.0, seed=seed)
            rows += [base | {"batch_size": 1, "top1": top1}, base | {"batch_size": 32, "top1": 0.0},
                     base | {"runtime": "onnxruntime-cpu", "batch_size": 1, "top1": 0.0}]
    return rows + [dict(rows[0], pretrained=False, top1=0.0), dict(rows[0], dataset="fmnist")]


def test_comparison_best_of_seeds_and_the_disagreeing_tables():
    from deploybench.report.paper import comparison, markdown_section

    comp = {c["dataset"]: c for c in comparison(synthetic_rows())}
    assert set(comp) == {"tiny_imagenet", "cifar10"}
    tiny = comp["tiny_imagenet"]
    assert (tiny["seeds"], tiny["mean"], tiny["std"], tiny["best"]) == (3, 75.0, 1.0, 76.0)
    assert tiny["disagree"] and sorted(tiny["paper"]) == [(75.33, ["Table 4"]), (76.30, ["Table 7"])]
    assert not comp["cifar10"]["disagree"] and comp["cifar10"]["paper"] == [(94.58, ["Table 4", "Table 7"])]
    assert comp["cifar10"]["delta_best"] == [pytest.approx(95.5 - 94.58)]
    text = markdown_section(synthetic_rows())
    assert "75.33 / 76.30 ⚠" in text and "tables disagree" in text and paper.CITATION in text


@pytest.mark.slow
def test_pipeline_report_shows_the_paper_column(tmp_path, torch_home):
    """A tiny 'flowers102' ImageFolder through finetune, export and bench, then the report beside the paper."""
    from deploybench.report import write_report
    from deploybench.store import ResultStore
    from deploybench.sweep.runner import run_pipeline

    data = image_folder(tmp_path / "flowers102", {"train": 6, "val": 2, "test": 4})
    cfg = from_dict({
        "name": "paper-tiny", "workdir": str(tmp_path / "work"), "seeds": [0, 1, 2],
        "datasets": [{"name": "flowers102", "path": str(data), "domain": "natural", "image_size": 32,
                      "expected": {"train": 2040, "test": 6149, "classes": 102}}],
        "backbones": [{"name": "mobilenetv3_large", "weights": "torchvision"}],
        "train": {"epochs": 1, "batch_size": 8, "augment": "none", "weight_decay": 0.01},
        "export": {"precisions": ["fp32"], "parity_images": 4, "calibration_images": 4},
        "bench": {"runtimes": ["torch", "onnxruntime-cpu"], "batch_sizes": [1], "threads": 1, "fresh_process": False,
                  "latency": {"warmup_iters": 1, "warmup_s": 0.01, "min_iters": 5, "min_duration_s": 0.02,
                              "max_duration_s": 0.1, "executions": 1}},
    }, "paper-tiny.yaml")
    summary = run_pipeline(cfg, executor="local", workers=1, progress=False)
    assert summary.counts()["bench"] == {"done": 3, "skipped": 0, "failed": 0}, str(summary)
    paths = write_report(ResultStore(cfg.root / "reports" / "results.db"), cfg.root / "reports", cfg)
    figure = next(f for f in paper.figures("mobilenetv3_large", "flowers102", 1.0))
    for key in ("markdown", "html"):
        text = paths[key].read_text()
        assert "Compared with the paper" in text and "Which Backbone to Use" in text, key
        assert "Oxford Flowers-102" in text and "MobileNetV3-Large" in text, key
        assert f"{figure.top1:.2f}" in text and "best of 3" in text and "optimistic" in text, key
