"""ResultStore on real SQLite: schema, upsert by config key, filters, keys, CSV export, merge, bad files."""
from __future__ import annotations

import csv
import json
import sqlite3

import pytest

from deploybench.errors import DeployBenchError
from deploybench.records import COLUMNS
from deploybench.store import KEY, TYPES, ResultStore, key_of


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
    assert ok == {key_of(row())}
    k = next(iter(ok))
    assert (k.run_id, k.artifact, k.runtime, k.batch_size, k.threads, k.device_fingerprint) == (
        "efficientnet_lite0-fmnist-f1-s0-12345678", "model.fp32.onnx", "onnxruntime-cpu", 1, None, "cpu-abc")
    assert len(store.keys(status=None)) == 2 and len(store.keys("skipped")) == 1
    assert k._fields == KEY


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
    assert store.merge([other.path]) == (2, 1, 0, 0)
    assert len(store.rows()) == 4 and store.rows(runtime="onnxruntime-cpu", device_fingerprint="cpu-abc")[0][
        "latency_ms_p50"] == 2.2
    before = store.rows()
    assert store.merge([other.path]) == (0, 0, 3, 0)
    assert store.merge([other.path, store.path]) == (0, 0, 7, 0)
    assert store.rows() == before
    # an older measurement does not overwrite a newer one
    old = ResultStore(tmp_path / "old.db")
    old.add([row(latency_ms_p50=9.9, created_at="2020-01-01T00:00:00+00:00")])
    assert store.merge([old.path]) == (0, 0, 1, 0)
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
    assert s.merge([p]) == (1, 0, 0, 0)
    got = s.rows()[0]
    assert got["top1"] == 80.0 and got["latency_ms_p50"] is None
    assert ResultStore(p).rows()[0]["config_name"] is None   # the old file itself is upgraded in place


def test_ok_row_is_never_replaced_by_a_failure(tmp_path, store):
    store.add([row()])
    # bench re-measures and fails; a merged db holds a newer skipped attempt: the ok row stays, failures are kept
    store.add([row(status="failed", status_reason="timeout", top1=None, created_at="2026-11-22T00:00:00+00:00")])
    other = ResultStore(tmp_path / "other.db")
    other.add([row(status="skipped", status_reason="no openvino", created_at="2026-11-23T00:00:00+00:00")])
    assert store.merge([other.path]) == (0, 0, 0, 1)
    (got,) = store.rows()
    assert got["status"] == "ok" and got["top1"] == 91.5
    assert [f["status_reason"] for f in store.failures()] == ["timeout", "no openvino"]
    assert store.merge([other.path]) == (0, 0, 0, 1) and len(store.failures()) == 2   # the same attempt once
    # an ok row from another db is merged in even when it is older than the failure it replaces
    fresh = ResultStore(tmp_path / "fresh.db")
    fresh.add([row(status="failed", status_reason="crash", created_at="2027-01-01T00:00:00+00:00")])
    assert fresh.merge([store.path]) == (0, 1, 0, 0)
    assert fresh.rows()[0]["status"] == "ok" and sorted(f["status_reason"] for f in fresh.failures()) == [
        "crash", "no openvino", "timeout"]


def test_ok_row_replaces_failures_that_stood_for_it(store):
    """A runtime that was unavailable left rows without a batch size (or without an artifact); once it measures
    ok, those rows leave `results` for `failures` — and the precision label is not part of the key."""
    store.add([row(runtime="openvino", batch_size=None, status="skipped", status_reason="not installed"),
               row(runtime="openvino", artifact=None, precision=None, batch_size=None, status="skipped",
                   status_reason="no artifact"),
               row(runtime="torch", artifact="best.pt", status="failed", status_reason="oom")])
    store.add([row(runtime="openvino", precision="int8?", status="failed", status_reason="relabelled")])
    store.add([row(runtime="openvino", batch_size=1), row(runtime="openvino", batch_size=8)])
    assert sorted((r["runtime"], r["batch_size"], r["status"]) for r in store.rows()) == [
        ("openvino", 1, "ok"), ("openvino", 8, "ok"), ("torch", 1, "failed")]
    assert sorted(f["status_reason"] for f in store.failures()) == ["no artifact", "not installed", "relabelled"]
    # a later skipped placeholder for a runtime that has ok rows goes straight to failures
    store.add([row(runtime="openvino", batch_size=None, status="skipped", status_reason="again")])
    assert len(store.rows()) == 3 and len(store.failures()) == 4


def test_old_key_is_migrated(tmp_path):
    """A db written with the old unique key (precision included, failures replacing ok rows) is migrated on open:
    one row per configuration, ok first, the rest kept as failures."""
    p = tmp_path / "old_key.db"
    con = sqlite3.connect(p)
    old_cols = [c for c in COLUMNS if c not in ("bench_call", "latency_ms_execution_p50s")]
    con.execute(f"CREATE TABLE results ({', '.join(old_cols)})")
    key = ("run_id", "artifact", "runtime", "precision", "batch_size", "threads", "device_fingerprint")
    con.execute(f"CREATE UNIQUE INDEX results_key ON results ({', '.join(f'IFNULL({k}, {chr(39) * 2})' for k in key)})")
    for r in (row(), row(precision="fp16", status="failed", status_reason="label changed",
                         created_at="2026-11-22T00:00:00+00:00"),
              row(batch_size=None, status="skipped", status_reason="placeholder")):
        con.execute(f"INSERT INTO results VALUES ({', '.join('?' * len(old_cols))})",
                    [json.dumps(r[c]) if isinstance(r[c], dict) else r[c] for c in old_cols])
    con.commit()
    con.close()
    s = ResultStore(p)
    assert [(r["status"], r["precision"]) for r in s.rows()] == [("ok", "fp32")]
    assert sorted(f["status_reason"] for f in s.failures()) == ["label changed", "placeholder"]
    assert ResultStore(p).rows() == s.rows()   # migrated once
