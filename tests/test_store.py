"""ResultStore on real SQLite: schema, upsert by config key, filters, keys, CSV export, merge, bad files."""
from __future__ import annotations

import csv
import sqlite3

import pytest

from deploybench.errors import DeployBenchError
from deploybench.records import COLUMNS
from deploybench.store import KEY, TYPES, ResultStore


def row(**over) -> dict:
    r = dict.fromkeys(COLUMNS)
    r.update(run_id="efficientnet_lite0-fmnist-f1-s0-12345678", backbone="efficientnet_lite0", dataset="fmnist",
             domain="natural", fraction=1.0, seed=0, pretrained=True, artifact="model.fp32.onnx", format="onnx",
             runtime="onnxruntime-cpu", precision="fp32", device="AMD EPYC (2 threads)", device_fingerprint="cpu-abc",
             batch_size=1, threads=None, top1=91.5, latency_ms_p50=2.5, status="ok", noisy=False,
             created_at="2026-11-21T10:00:00+00:00", versions={"onnxruntime": "1.31.0"})
    r.update(over)
    return r


@pytest.fixture
def store(tmp_path):
    return ResultStore(tmp_path / "reports" / "results.db")


def test_schema_types_and_wal(store):
    con = sqlite3.connect(store.path)
    cols = {name: typ for _, name, typ, *_ in con.execute("PRAGMA table_info(results)")}
    assert list(cols) == COLUMNS
    assert cols["top1"] == "REAL" and cols["batch_size"] == "INTEGER" and cols["run_id"] == "TEXT"
    assert set(cols.values()) == {"REAL", "INTEGER", "TEXT"} and cols == TYPES
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


def test_add_roundtrip_and_upsert(store):
    store.add([row(), row(batch_size=8, latency_ms_p50=10.0), row(runtime="torch", artifact="best.pt")])
    got = store.rows(batch_size=1, runtime="onnxruntime-cpu")
    assert len(got) == 1 and set(got[0]) == set(COLUMNS)
    assert got[0]["pretrained"] is True and got[0]["noisy"] is False and got[0]["threads"] is None
    assert got[0]["top1"] == 91.5 and got[0]["versions"] == '{"onnxruntime": "1.31.0"}' and got[0]["top5"] is None
    # re-measured config (threads=None is part of the key, NULL-safe) replaces its row
    store.add([row(latency_ms_p50=2.1, created_at="2026-11-22T10:00:00+00:00")])
    assert len(store.rows()) == 3
    assert store.rows(batch_size=1, runtime="onnxruntime-cpu")[0]["latency_ms_p50"] == 2.1
    # a different thread count or device is a different config
    store.add([row(threads=2), row(device_fingerprint="cpu-other")])
    assert len(store.rows()) == 5
    assert len(store.rows(runtime=["torch", "onnxruntime-cpu"], threads=None)) == 4
    with pytest.raises(DeployBenchError, match="unknown filter column 'nope'"):
        store.rows(nope=1)
    with pytest.raises(DeployBenchError, match="unknown column"):
        store.add([row() | {"bogus": 1}])


def test_keys(store):
    store.add([row(), row(runtime="onnxruntime-cuda", status="skipped", status_reason="no CUDA device")])
    ok = store.keys()
    assert ok == {("efficientnet_lite0-fmnist-f1-s0-12345678", "model.fp32.onnx", "onnxruntime-cpu", "fp32", 1,
                   None, "cpu-abc")}
    assert len(store.keys(status=None)) == 2 and len(store.keys("skipped")) == 1
    assert len(KEY) == len(next(iter(ok)))


def test_export_csv(store, tmp_path):
    store.add([row(), row(batch_size=8, top1=None)])
    out = store.export_csv(tmp_path / "results.csv")
    with open(out, newline="") as f:
        lines = list(csv.reader(f))
    assert lines[0] == COLUMNS and len(lines) == 3
    r = dict(zip(COLUMNS, lines[2]))
    assert r["top1"] == "" and r["threads"] == "" and r["batch_size"] == "8" and r["pretrained"] == "True"
    assert not list(tmp_path.glob(".results.csv.*"))   # no temp file left behind


def test_merge_idempotent(tmp_path, store):
    other = ResultStore(tmp_path / "other.db")
    other.add([row(device_fingerprint="gpu-h100", device="NVIDIA H100"),
               row(device_fingerprint="gpu-h100", device="NVIDIA H100", batch_size=32),
               row(latency_ms_p50=2.2, created_at="2026-11-23T00:00:00+00:00")])   # newer re-measure
    store.add([row(), row(runtime="torch", artifact="best.pt")])
    assert store.merge([other.path]) == (2, 1, 0)
    assert len(store.rows()) == 4 and store.rows(runtime="onnxruntime-cpu", device_fingerprint="cpu-abc")[0][
        "latency_ms_p50"] == 2.2
    before = store.rows()
    assert store.merge([other.path]) == (0, 0, 3)
    assert store.merge([other.path, store.path]) == (0, 0, 7)
    assert store.rows() == before
    # an older measurement does not overwrite a newer one
    old = ResultStore(tmp_path / "old.db")
    old.add([row(latency_ms_p50=9.9, created_at="2020-01-01T00:00:00+00:00")])
    assert store.merge([old.path]) == (0, 0, 1)
    assert store.rows(runtime="onnxruntime-cpu", device_fingerprint="cpu-abc")[0]["latency_ms_p50"] == 2.2


def test_bad_files_name_the_file(tmp_path, store):
    bad = tmp_path / "corrupt.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DeployBenchError, match="corrupt.db"):
        store.merge([bad])
    with pytest.raises(DeployBenchError, match="corrupt.db"):
        ResultStore(bad)
    with pytest.raises(DeployBenchError, match="missing.db: results db not found"):
        store.merge([tmp_path / "missing.db"])
    foreign = tmp_path / "foreign.db"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE t (x INTEGER)")
    con.commit()
    con.close()
    with pytest.raises(DeployBenchError, match="foreign.db: has no deploybench `results` table"):
        store.merge([foreign])
    assert store.rows() == []


def test_old_schema_gains_new_columns(tmp_path):
    p = tmp_path / "old_schema.db"
    con = sqlite3.connect(p)
    con.execute("CREATE TABLE results (run_id TEXT, artifact TEXT, runtime TEXT, precision TEXT, batch_size INTEGER,"
                " threads INTEGER, device_fingerprint TEXT, top1 REAL, status TEXT)")
    con.execute("INSERT INTO results VALUES ('r', 'a', 'torch', 'fp32', 1, NULL, 'fp', 80.0, 'ok')")
    con.commit()
    con.close()
    s = ResultStore(tmp_path / "new.db")
    assert s.merge([p]) == (1, 0, 0)
    got = s.rows()[0]
    assert got["top1"] == 80.0 and got["latency_ms_p50"] is None
    assert ResultStore(p).rows()[0]["config_name"] is None   # the old file itself is upgraded in place
