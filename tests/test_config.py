"""Config loading: typed values, defaults, and one-line errors that name the key."""
from pathlib import Path

import pytest

from deploybench.config import load_config
from deploybench.errors import DeployBenchError
from deploybench.sweep.plan import plan

MIN = "name: t\ndatasets: [{name: d, kind: fashion-mnist}]\nbackbones: [resnet18]\n"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_shipped_configs_load():
    for path in Path("configs").glob("*.yaml"):
        cfg = load_config(path)
        assert cfg.backbones and cfg.datasets, path


def test_defaults_and_shorthand(tmp_path):
    cfg = load_config(write(tmp_path, MIN))
    assert cfg.backbones[0].name == "resnet18" and cfg.backbones[0].weights is None
    assert cfg.train.mode == "finetune" and cfg.bench.batch_sizes == [1, 32]
    assert isinstance(cfg.bench.latency.ci_rel_width, float)


@pytest.mark.parametrize("extra, needle", [
    ("train: {epoch: 3}\n", "unknown key 'train.epoch' (did you mean 'epochs'?)"),
    ("train: {epochs: three}\n", "train.epochs: expected int, got str 'three'"),
    ("train: {mode: probe}\n", "train.mode: 'probe' is not one of finetune, linear_probe"),
    ("fractions: [0.0]\n", "fractions: 0.0 must be in (0, 1]"),
    ("bench: {batch_sizes: 8}\n", "bench.batch_sizes: expected a list"),
    ("bench: {latency: {min_iters: true}}\n", "bench.latency.min_iters: expected int, got bool"),
])
def test_bad_values_name_the_key(tmp_path, extra, needle):
    with pytest.raises(DeployBenchError) as e:
        load_config(write(tmp_path, MIN + extra))
    msg = str(e.value)
    assert needle in msg and "c.yaml" in msg and "\n" not in msg


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(DeployBenchError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(DeployBenchError, match="not valid YAML"):
        load_config(write(tmp_path, "name: [unclosed\n"))
    with pytest.raises(DeployBenchError, match="missing required key 'datasets'"):
        load_config(write(tmp_path, "name: t\nbackbones: [a]\n"))
    with pytest.raises(DeployBenchError, match="imagefolder needs a 'path'"):
        load_config(write(tmp_path, "name: t\ndatasets: [{name: d}]\nbackbones: [a]\n"))


def test_run_ids_are_stable_and_distinct(tmp_path):
    text = MIN + "seeds: [0, 1]\nfractions: [0.1, 1.0]\n"
    a = [r.run_id for r in plan(load_config(write(tmp_path, text)))]
    b = [r.run_id for r in plan(load_config(write(tmp_path, text)))]
    assert a == b and len(set(a)) == 4
    assert a[0].startswith("resnet18-d-f0.1-s0-")
    changed = [r.run_id for r in plan(load_config(write(tmp_path, text + "train: {epochs: 7}\n")))]
    assert not set(changed) & set(a)
