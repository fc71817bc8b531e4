"""Results store: one SQLite table `results` (reports/results.db) with the result columns, upserted by config key."""
from __future__ import annotations

import csv
import json
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

from .errors import DeployBenchError
from .io import atomic_path
from .records import COLUMNS

KEY = ("run_id", "artifact", "runtime", "precision", "batch_size", "threads", "device_fingerprint")
_INTEGER = {"seed", "pretrained", "batch_size", "threads", "latency_count", "latency_executions", "image_size",
            "noisy", "accuracy_images"}
_TEXT = {"run_id", "backbone", "dataset", "domain", "artifact", "format", "runtime", "precision", "device",
         "device_fingerprint", "status", "status_reason", "created_at", "versions", "scenario", "config_name",
         "accuracy_flag", "compute_precision"}
_BOOL = {"pretrained", "noisy"}
TYPES = {c: "INTEGER" if c in _INTEGER else "TEXT" if c in _TEXT else "REAL" for c in COLUMNS}
_MATCH = " AND ".join(f"{k} IS ?" for k in KEY)   # IS: NULL-safe equality (threads=None means all cores)


class MergeCounts(NamedTuple):
    added: int
    replaced: int
    unchanged: int


def _cell(value):
    """Python value -> SQLite value (dicts/lists as sorted JSON)."""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def _row(names: list[str], values: tuple) -> dict:
    row = dict.fromkeys(COLUMNS)
    row.update((n, v) for n, v in zip(names, values) if n in row)
    for c in _BOOL:
        if isinstance(row[c], int):
            row[c] = bool(row[c])
    return row


@contextmanager
def _connect(path: Path, create: bool = False) -> Iterator[sqlite3.Connection]:
    if not create and not path.is_file():
        raise DeployBenchError(f"{path}: results db not found (check the path)")
    con = sqlite3.connect(path, timeout=60)
    try:
        yield con
    except sqlite3.DatabaseError as e:
        raise DeployBenchError(f"{path}: not a deploybench results database (SQLite: {e}); pass a results.db "
                               "written by deploybench, or move the file away") from None
    finally:
        con.close()


class ResultStore:
    """SQLite results store; a re-measured config (same KEY) replaces its row. Safe for one writer (WAL)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _connect(self.path, create=True) as con:
            con.execute("PRAGMA journal_mode=WAL")
            cols = ", ".join(f"{c} {TYPES[c]}" for c in COLUMNS)
            con.execute(f"CREATE TABLE IF NOT EXISTS results ({cols})")
            have = {r[1] for r in con.execute("PRAGMA table_info(results)")}
            for c in COLUMNS:   # a db written before a column was added gains it (values NULL)
                if c not in have:
                    con.execute(f"ALTER TABLE results ADD COLUMN {c} {TYPES[c]}")
            expr = ", ".join(f"IFNULL({k}, '')" for k in KEY)
            con.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS results_key ON results ({expr})")
            con.commit()

    def add(self, rows: Iterable[dict]) -> int:
        """Insert or replace rows (one transaction); returns how many were written."""
        rows = list(rows)
        for i, r in enumerate(rows):
            unknown = set(r) - set(COLUMNS)
            if unknown:
                raise DeployBenchError(f"{self.path}: row {i} has unknown column(s) {sorted(unknown)}; "
                                       f"result rows use records.COLUMNS")
        with _connect(self.path) as con, con:
            for r in rows:
                self._upsert(con, r)
        return len(rows)

    @staticmethod
    def _upsert(con: sqlite3.Connection, row: dict) -> None:
        con.execute(f"DELETE FROM results WHERE {_MATCH}", [_cell(row.get(k)) for k in KEY])
        con.execute(f"INSERT INTO results ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                    [_cell(row.get(c)) for c in COLUMNS])

    def rows(self, **filters) -> list[dict]:
        """Rows as dicts of COLUMNS; `col=value` or `col=[v1, v2]` filters (None matches NULL)."""
        where, args = [], []
        for col, value in filters.items():
            if col not in TYPES:
                raise DeployBenchError(f"{self.path}: unknown filter column '{col}' (known: {', '.join(COLUMNS)})")
            values = list(value) if isinstance(value, (list, tuple, set)) else [value]
            where.append("(" + " OR ".join(f"{col} IS ?" for _ in values) + ")")
            args += [_cell(v) for v in values]
        sql = f"SELECT {', '.join(COLUMNS)} FROM results"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY " + ", ".join(KEY)
        with _connect(self.path) as con:
            return [_row(COLUMNS, v) for v in con.execute(sql, args)]

    def keys(self, status: str | None = "ok") -> set[tuple]:
        """Config keys (KEY order) present with that status (None: any status) — what bench may skip."""
        sql = f"SELECT {', '.join(KEY)} FROM results" + (" WHERE status IS ?" if status is not None else "")
        with _connect(self.path) as con:
            return {tuple(r) for r in con.execute(sql, [status] if status is not None else [])}

    def export_csv(self, path: str | Path) -> Path:
        """Write all rows as CSV (header = COLUMNS, empty cell for None), atomically."""
        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(COLUMNS)
            for r in self.rows():
                w.writerow(["" if r[c] is None else _cell(r[c]) for c in COLUMNS])
        return path

    def merge(self, paths: Iterable[str | Path]) -> MergeCounts:
        """Fold other results dbs in. Same key: the newer `created_at` wins; equal rows count as unchanged."""
        incoming = []
        for p in map(Path, paths):
            with _connect(p) as con:
                names = [r[1] for r in con.execute("PRAGMA table_info(results)")]
                if not names or not set(KEY) <= set(names):
                    raise DeployBenchError(f"{p}: has no deploybench `results` table (is it a results.db?)")
                incoming += [_row(names, v) for v in con.execute(f"SELECT {', '.join(names)} FROM results")]
        added = replaced = unchanged = 0
        with _connect(self.path) as con, con:
            for row in incoming:
                cur = con.execute(f"SELECT {', '.join(COLUMNS)} FROM results WHERE {_MATCH}",
                                  [_cell(row[k]) for k in KEY]).fetchone()
                old = _row(COLUMNS, cur) if cur else None
                if old is None:
                    added += 1
                elif {c: _cell(v) for c, v in old.items()} == {c: _cell(v) for c, v in row.items()} \
                        or (old["created_at"] or "") > (row["created_at"] or ""):
                    unchanged += 1
                    continue
                else:
                    replaced += 1
                self._upsert(con, row)
        return MergeCounts(added, replaced, unchanged)
