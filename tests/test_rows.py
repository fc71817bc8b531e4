"""rows.ResultRow: the column contract, flat/from_flat, and a column added as one field reaching COLUMNS, the
SQLite schema and the CSV header."""
import csv
import sqlite3
from dataclasses import dataclass, field
from typing import Optional

import pytest

from deploybench.records import COLUMNS
from deploybench.rows import Latency, Memory, ResultRow, col, columns, schema
from deploybench.store import ResultStore

# the contract before ResultRow (DESIGN.md's list, then the README's extensions): order is part of it
CONTRACT = [
    "run_id", "backbone", "dataset", "domain", "fraction", "seed", "pretrained", "artifact", "format",
    "runtime", "precision", "device", "device_fingerprint", "batch_size", "threads", "top1", "top5",
    "top1_delta_vs_torch_fp32", "parity_max_rel_err", "parity_top1_agree", "latency_ms_mean",
    "latency_ms_p50", "latency_ms_p90", "latency_ms_p95", "latency_ms_p99", "latency_ms_p50_ci_low",
    "latency_ms_p50_ci_high", "latency_cv", "throughput_ips", "peak_host_mem_mb", "peak_device_mem_mb",
    "size_mb", "params_m", "gmacs", "status", "status_reason", "created_at", "versions",
    "scenario", "latency_ms_std", "latency_ms_min", "latency_ms_max", "latency_count", "latency_executions",
    "latency_ms_device_p50",
    "noisy", "accuracy_flag", "parity_median_rel_err", "image_size", "efficiency", "config_name",
    "peak_device_mem_method", "bench_call", "latency_ms_execution_p50s", "recipe",
    "profile_path", "compute_precision", "accuracy_images", "top1_delta_se",
]


def test_columns_are_the_contract():
    assert COLUMNS == CONTRACT
    assert list(ResultRow().flat()) == CONTRACT and set(ResultRow().flat().values()) == {None}
    types = schema().types
    assert (types["latency_ms_p50"], types["batch_size"], types["noisy"], types["latency_ms_execution_p50s"],
            types["versions"], types["run_id"]) == ("REAL", "INTEGER", "INTEGER", "TEXT", "TEXT", "TEXT")
    assert schema().bools == {"pretrained", "noisy"}


def test_flat_round_trip():
    flat = dict.fromkeys(COLUMNS) | dict(run_id="r", top1=91.5, latency_ms_p50=2.0, peak_host_mem_mb=40.0,
                                         latency_ms_execution_p50s=[2.0, 2.1])
    row = ResultRow.from_flat(flat)
    assert row.accuracy.top1 == 91.5 and row.latency.latency_ms_p50 == 2.0 and row.run.run_id == "r"
    assert row.memory.mb == 40.0 and Memory(1.0, 2.0).mb == 2.0
    assert row.flat() == flat and list(row.flat()) == COLUMNS
    with pytest.raises(KeyError, match="nope"):
        ResultRow.from_flat({"nope": 1})


@dataclass
class _Latency(Latency):
    latency_ms_p42: Optional[float] = col()


@dataclass
class _Row(ResultRow):
    latency: _Latency = field(default_factory=_Latency)


def test_a_column_is_one_field(tmp_path):
    """One field in a part: the column comes last in the columns, the schema, the table and the CSV header."""
    assert columns(_Row) == CONTRACT + ["latency_ms_p42"] and schema(_Row).types["latency_ms_p42"] == "REAL"
    old = ResultStore(tmp_path / "r.db")
    old.add([dict.fromkeys(COLUMNS) | dict(run_id="r", status="ok", latency_ms_p50=1.0)])
    store = ResultStore(tmp_path / "r.db", row_type=_Row)   # an older db gains the column on open
    assert store.rows()[0]["latency_ms_p42"] is None
    store.add([_Row.from_flat(dict(run_id="r", status="ok", latency_ms_p50=1.0, latency_ms_p42=3.0)).flat()])
    with sqlite3.connect(tmp_path / "r.db") as con:
        assert ("latency_ms_p42", "REAL") in [(r[1], r[2]) for r in con.execute("PRAGMA table_info(results)")]
    with open(store.export_csv(tmp_path / "r.csv")) as f:
        head, row = list(csv.reader(f))
    assert head == CONTRACT + ["latency_ms_p42"] and row[-1] == "3.0"


def test_run_meta_is_typed_and_reads_one_line_errors(tmp_path):
    """meta.json as records.RunMeta: typed fields, the trainer's other keys kept in `extra`, a round trip that
    export's freshness check relies on, and one-line errors for a missing, unfinished or truncated file."""
    import json

    from deploybench.errors import DeployBenchError
    from deploybench.records import RunMeta

    d = {"run_id": "r", "backbone": "efficientnet_lite0", "image_size": 56, "mean": [0.5] * 3, "std": [0.5] * 3,
         "num_classes": 10, "seed": 0, "status": "complete", "best_epoch": 2}
    (tmp_path / "meta.json").write_text(json.dumps(d))
    m = RunMeta.read(tmp_path)
    assert (m.image_size, m.num_classes, m.in_chans, m.extra) == (56, 10, 3, {"best_epoch": 2})
    assert RunMeta.from_json(m.to_json()) == m and m.recorded_in(d) and m.recorded_in(m.to_json())
    assert not m.recorded_in(d | {"best_epoch": 3}) and not m.recorded_in(None) and not m.recorded_in({"x": 1})
    for bad, says in ((d | {"status": "running"}, "missing or incomplete"),
                      ({k: v for k, v in d.items() if k != "image_size"}, "image_size")):
        (tmp_path / "meta.json").write_text(json.dumps(bad))
        with pytest.raises(DeployBenchError, match=says):
            RunMeta.read(tmp_path)
    (tmp_path / "meta.json").unlink()
    with pytest.raises(DeployBenchError, match="meta.json: missing"):
        RunMeta.read(tmp_path)
