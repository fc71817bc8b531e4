"""A corpus of the mistakes people make, across every command: each gets its exit code, one line naming the
culprit, and no traceback — before any model is trained or loaded."""
from __future__ import annotations

import sqlite3
import sys

import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import tiny_config_dict
from deploybench.cli import main


def run_cli(args: list[str], monkeypatch, capsys) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["deploybench", *map(str, args)])
    with pytest.raises(SystemExit) as e:
        main()
    out, err = capsys.readouterr()
    return e.value.code, (out + err).strip()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Bad and good inputs on disk: configs, models, data folders, databases, checkpoints."""
    d = tmp_path_factory.mktemp("bad")

    def cfg(name: str, **over) -> str:
        c = tiny_config_dict(d / "work", **over)
        (d / name).write_text(yaml.safe_dump(c))
        return str(d / name)

    f = {"good": cfg("good.yaml")}
    f["typo_key"] = cfg("typo_key.yaml", trian={"epochs": 1})
    f["bad_backbone"] = cfg("bad_backbone.yaml", backbones=[{"name": "resnet5O"}])
    f["bad_runtime"] = cfg("bad_runtime.yaml", bench={"runtimes": ["onnxruntime-gpx"]})
    f["bad_format"] = cfg("bad_format.yaml", export={"formats": ["onnx", "tflite"]})
    f["bad_precision"] = cfg("bad_precision.yaml", export={"precisions": ["int4"]})
    f["bad_batch"] = cfg("bad_batch.yaml", bench={"batch_sizes": [0]})
    f["bad_fraction"] = cfg("bad_fraction.yaml", fractions=[1.5])
    f["bad_type"] = cfg("bad_type.yaml", seeds="zero")
    f["no_path"] = cfg("no_path.yaml", datasets=[{"name": "mine", "kind": "imagefolder"}])
    (d / "notyaml.yaml").write_text("name: [unclosed\n  - x: {")
    (d / "list.yaml").write_text("- just\n- a list\n")
    # models
    (d / "garbage.onnx").write_bytes(b"not a protobuf at all")
    Image.new("RGB", (8, 8)).save(d / "picture.png")
    (d / "picture.onnx").write_bytes((d / "picture.png").read_bytes())
    (d / "empty.onnx").write_bytes(b"")
    # data folders
    for cls in ("a", "b"):
        (d / "cls" / cls).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(d / "cls" / cls / f"{i}.png")
    (d / "empty_cls" / "a").mkdir(parents=True)
    (d / "empty_cls" / "b").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(d / "empty_cls" / "a" / "0.png")
    (d / "no_cls").mkdir()
    (d / "no_cls" / "loose.png").write_bytes((d / "picture.png").read_bytes())
    # databases
    (d / "text.db").write_text("hello, not sqlite\n")
    con = sqlite3.connect(d / "other.db")
    con.execute("CREATE TABLE people (name TEXT)")
    con.commit()
    con.close()
    # checkpoint-less workdir config (export/bench before finetune)
    f["dir"] = d
    return f


def _tiny_onnx(path, classes: int) -> None:
    """A real 2-layer ONNX classifier (conv + global pool + gemm) with `classes` outputs."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.zeros((4, 3, 3, 3), np.float32), "w")
    fc = numpy_helper.from_array(np.zeros((classes, 4), np.float32), "fc")
    nodes = [helper.make_node("Conv", ["input", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("GlobalAveragePool", ["c"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "fc"], ["logits"], transB=1)]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                            ["n", 3, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", classes])],
                              [w, fc])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))


CASES = [
    # (id, args builder, exit code, culprit substring)
    ("config missing", lambda f: ["finetune", "-c", f["dir"] / "nope.yaml"], 2, "nope.yaml"),
    ("config not yaml", lambda f: ["finetune", "-c", f["dir"] / "notyaml.yaml"], 2, "not valid YAML"),
    ("config a list", lambda f: ["export", "-c", f["dir"] / "list.yaml"], 2, "mapping"),
    ("config key typo", lambda f: ["finetune", "-c", f["typo_key"]], 2, "did you mean 'train'"),
    ("config wrong type", lambda f: ["finetune", "-c", f["bad_type"]], 2, "seeds"),
    ("config fraction", lambda f: ["finetune", "-c", f["bad_fraction"]], 2, "fractions"),
    ("config imagefolder without path", lambda f: ["finetune", "-c", f["no_path"]], 2, "needs a 'path'"),
    ("config unknown backbone", lambda f: ["finetune", "-c", f["bad_backbone"]], 2, "resnet50"),
    ("config unknown runtime", lambda f: ["bench", "-c", f["bad_runtime"]], 2, "onnxruntime-cpu"),
    ("config unknown format", lambda f: ["export", "-c", f["bad_format"]], 2, "tflite"),
    ("config unknown precision", lambda f: ["export", "-c", f["bad_precision"]], 2, "int4"),
    ("config batch size 0", lambda f: ["bench", "-c", f["bad_batch"]], 2, "batch_sizes"),
    ("--backbone typo", lambda f: ["finetune", "-c", f["good"], "--backbone", "resnet5O"], 2, "resnet50"),
    ("--backbone not in config", lambda f: ["finetune", "-c", f["good"], "--backbone", "resnet50"], 2,
     "efficientnet_lite0"),
    ("--runtime typo", lambda f: ["bench", "-c", f["good"], "--runtime", "onnxruntime-gpx"], 2, "onnxruntime-cpu"),
    ("--precision unknown", lambda f: ["export", "-c", f["good"], "--precision", "int4"], 2, "int4"),
    ("--format unknown", lambda f: ["export", "-c", f["good"], "--format", "tflite"], 2, "tflite"),
    ("--executions 0", lambda f: ["bench", "-c", f["good"], "--executions", "0"], 2, "--executions"),
    ("--batch-size not a number", lambda f: ["bench", "-c", f["good"], "--batch-size", "big"], 2, "--batch-size"),
    ("unknown option", lambda f: ["bench", "--thraeds", "2"], 2, "--thraeds"),
    ("--model missing", lambda f: ["bench", "--model", f["dir"] / "none.onnx", "--input-size", "3x8x8"], 2,
     "none.onnx"),
    ("--model garbage", lambda f: ["bench", "--model", f["dir"] / "garbage.onnx", "--input-size", "3x8x8"], 2,
     "garbage.onnx"),
    ("--model a png", lambda f: ["bench", "--model", f["dir"] / "picture.onnx", "--input-size", "3x8x8"], 2,
     "picture.onnx"),
    ("--model empty file", lambda f: ["bench", "--model", f["dir"] / "empty.onnx", "--input-size", "3x8x8"], 2,
     "empty.onnx"),
    ("--model truncated", lambda f: ["bench", "--model", f["dir"] / "trunc.onnx", "--input-size", "3x8x8"], 2,
     "trunc.onnx"),
    ("--model without --input-size", lambda f: ["bench", "--model", f["dir"] / "m10.onnx"], 2, "--input-size"),
    ("--input-size malformed", lambda f: ["bench", "--model", f["dir"] / "m10.onnx", "--input-size", "224"], 2,
     "--input-size"),
    ("--mean malformed", lambda f: ["bench", "--model", f["dir"] / "m10.onnx", "--input-size", "3x8x8",
                                    "--mean", "a,b,c"], 2, "--mean"),
    ("--model runtime typo", lambda f: ["bench", "--model", f["dir"] / "m10.onnx", "--input-size", "3x8x8",
                                        "--runtime", "openvin0"], 2, "openvino"),
    ("--data class count", lambda f: ["bench", "--model", f["dir"] / "m10.onnx", "--input-size", "3x8x8",
                                      "--data", f["dir"] / "cls"], 2, "2 class folders, but m10.onnx outputs 10"),
    ("--data empty class", lambda f: ["bench", "--model", f["dir"] / "m2.onnx", "--input-size", "3x8x8",
                                      "--data", f["dir"] / "empty_cls"], 2, "empty_cls/b"),
    ("--data no class folders", lambda f: ["bench", "--model", f["dir"] / "m2.onnx", "--input-size", "3x8x8",
                                           "--data", f["dir"] / "no_cls"], 2, "no class directories"),
    ("--data missing", lambda f: ["bench", "--model", f["dir"] / "m2.onnx", "--input-size", "3x8x8",
                                  "--data", f["dir"] / "nowhere"], 2, "nowhere"),
    ("merge a text file", lambda f: ["merge", f["dir"] / "text.db"], 2, "not a deploybench results database"),
    ("merge another sqlite db", lambda f: ["merge", f["dir"] / "other.db"], 2, "no deploybench `results` table"),
    ("merge missing file", lambda f: ["merge", f["dir"] / "missing.db"], 2, "missing.db"),
    ("select without results", lambda f: ["select", "--db", f["dir"] / "missing.db"], 2, "missing.db"),
    ("select bad number", lambda f: ["select", "--max-latency-ms", "fast"], 2, "--max-latency-ms"),
    ("report without results", lambda f: ["report", "-c", f["good"]], 2, "no results yet"),
    ("export before finetune", lambda f: ["export", "-c", f["good"]], 2, "every run failed in stage(s) export"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_one_line(case, files, monkeypatch, capsys, tmp_path):
    name, build, code, culprit = case
    d = files["dir"]
    if not (d / "m10.onnx").exists():
        _tiny_onnx(d / "m10.onnx", 10)
        _tiny_onnx(d / "m2.onnx", 2)
        (d / "trunc.onnx").write_bytes((d / "m10.onnx").read_bytes()[:200])
    monkeypatch.chdir(tmp_path)            # merge/select write or read reports/ under the current directory
    got, text = run_cli(build(files), monkeypatch, capsys)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert got == code, text
    assert "Traceback" not in text, text
    assert lines and lines[-1].startswith("error: ") and culprit in lines[-1], text
    assert len([ln for ln in lines if ln.startswith("error: ")]) == 1, text


def test_corpus_is_large_enough():
    assert len(CASES) >= 25


def test_corrupt_images_are_skipped_with_count_and_example(files, monkeypatch, capsys, caplog, tmp_path):
    """A plain class folder with a corrupt file: benched, the bad file skipped with a count and an example name."""
    d = files["dir"]
    _tiny_onnx(d / "m2b.onnx", 2)
    data = tmp_path / "data"
    for cls in ("a", "b"):
        (data / cls).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(data / cls / "ok.png")
    (data / "a" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["deploybench", "bench", "--model", str(d / "m2b.onnx"), "--input-size",
                                      "3x8x8", "--data", str(data), "--runtime", "onnxruntime-cpu",
                                      "--batch-size", "1", "--executions", "1"])
    main()
    out, err = capsys.readouterr()
    warned = caplog.text + out + err          # the data logger's warning (stderr outside pytest)
    assert "skipped 1 unreadable images" in warned and "broken.jpg" in warned
    assert "onnxruntime-cpu" in out and " ok " in out and "top1=50.0" in out      # 2 images left, all zeros
