"""Results store (reports/results.db): SQLite table `results`, one row per configuration (store.KEY), and table
`failures` for the failed/skipped attempts an ok row (or a newer one) outranks."""
from __future__ import annotations

import csv
import json
import sqlite3
from collections import namedtuple
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

from .errors import DeployBenchError
from .io import atomic_path
from .rows import ResultRow, Schema, schema

KEY = ("run_id", "artifact", "runtime", "batch_size", "threads", "device_fingerprint")
WILDCARD = ("artifact", "batch_size")   # None in a failed/skipped row: it stood for any artifact/batch of its run
ROWS = schema()   # columns, SQLite types (from ResultRow's field types) and bool columns
TYPES = ROWS.types
_MATCH = " AND ".join(f"{k} IS ?" for k in KEY)   # IS: NULL-safe equality (threads=None means all cores)
_KEY_EXPR = ", ".join(f"IFNULL({k}, '')" for k in KEY)
Key = namedtuple("Key", KEY)


def key_of(row: dict) -> Key:
    """The configuration a row measures: run, artifact file, runtime, batch size, threads and device fingerprint
    (precision and the labels follow from these)."""
    return Key(*(row.get(k) for k in KEY))


class MergeCounts(NamedTuple):
    added: int
    replaced: int
    unchanged: int
    failures: int    # failed/skipped rows kept in `failures`: their configuration has an ok (or a newer) row


def _cell(value):
    """Python value -> SQLite value (dicts/lists as sorted JSON)."""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def _row(sc: Schema, names: list[str], values: tuple) -> dict:
    row = dict.fromkeys(sc.columns)
    row.update((n, v) for n, v in zip(names, values) if n in row)
    for c in sc.bools:
        if isinstance(row[c], int):
            row[c] = bool(row[c])
    return row


def _same(sc: Schema, a: dict, b: dict) -> bool:
    return all(_cell(a.get(c)) == _cell(b.get(c)) for c in sc.columns)


def _select(sc: Schema, con: sqlite3.Connection, table: str, where: str, args: list) -> Iterator[dict]:
    for v in con.execute(f"SELECT {', '.join(sc.columns)} FROM {table} WHERE {where}", args):
        yield _row(sc, sc.columns, v)


def _insert(sc: Schema, con: sqlite3.Connection, table: str, row: dict) -> None:
    verb = "INSERT OR IGNORE" if table == "failures" else "INSERT"   # failures: the same attempt once
    con.execute(f"{verb} INTO {table} ({', '.join(sc.columns)}) VALUES ({', '.join('?' * len(sc.columns))})",
                [_cell(row.get(c)) for c in sc.columns])


def _stands_for(row: dict) -> tuple[str, list]:
    """WHERE clause for the configurations `row` stands for (its None WILDCARD fields match anything)."""
    ks = [k for k in KEY if not (k in WILDCARD and row.get(k) is None)]
    return " AND ".join(f"{k} IS ?" for k in ks), [_cell(row.get(k)) for k in ks]


def _standing_for(row: dict) -> tuple[str, list]:
    """WHERE clause for the stored rows that stand for `row`'s configuration (same key, or None WILDCARD fields)."""
    return (" AND ".join(f"({k} IS NULL OR {k} IS ?)" if k in WILDCARD else f"{k} IS ?" for k in KEY),
            [_cell(row.get(k)) for k in KEY])


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
    """SQLite results store (WAL, one writer): table `results` holds one row per configuration (KEY), table
    `failures` every failed/skipped attempt that did not stay in `results`.

    An ok row is never replaced by a failed or skipped one: such a row goes to `failures`. An ok row replaces an
    older row of its configuration, and moves the failed/skipped rows it covers (same key, or None where the
    failure had no artifact/batch yet: WILDCARD) to `failures`. Dbs written with the old key (which held the
    precision label) are migrated on open, and so are dbs missing columns added since (ALTER TABLE ADD COLUMN).
    The columns are those of `row_type` (rows.ResultRow).
    """

    def __init__(self, path: str | Path, row_type: type = ResultRow):
        self.path = Path(path)
        self.schema = sc = ROWS if row_type is ResultRow else schema(row_type)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _connect(self.path, create=True) as con:
            con.execute("PRAGMA journal_mode=WAL")
            for table in ("results", "failures"):
                cols = ", ".join(f"{c} {sc.types[c]}" for c in sc.columns)
                con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({cols})")
                have = {r[1] for r in con.execute(f"PRAGMA table_info({table})")}
                for c in sc.columns:   # a db written before a column was added gains it (values NULL)
                    if c not in have:
                        con.execute(f"ALTER TABLE {table} ADD COLUMN {c} {sc.types[c]}")
            con.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS failures_attempt ON failures ({_KEY_EXPR}, "
                        "IFNULL(created_at, ''), IFNULL(status, ''), IFNULL(status_reason, ''))")
            if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'results_config'").fetchone():
                self._migrate(con)
            con.commit()

    def _migrate(self, con: sqlite3.Connection) -> None:
        """Old key -> KEY: keep one row per configuration (ok first, then the newest), the rest as above."""
        con.execute("DROP INDEX IF EXISTS results_key")
        sc = self.schema
        rows = [_row(sc, sc.columns, v) for v in con.execute(f"SELECT {', '.join(sc.columns)} FROM results")]
        con.execute("DELETE FROM results")
        con.execute(f"CREATE UNIQUE INDEX results_config ON results ({_KEY_EXPR})")
        for r in sorted(rows, key=lambda r: (r["status"] == "ok", r["created_at"] or "")):
            self._put(con, r)

    def add(self, rows: Iterable[dict]) -> int:
        """Store rows (one transaction) under the rules above; returns how many were given."""
        rows = list(rows)
        for i, r in enumerate(rows):
            unknown = set(r) - set(self.schema.columns)
            if unknown:
                raise DeployBenchError(f"{self.path}: row {i} has unknown column(s) {sorted(unknown)}; "
                                       f"result rows use records.COLUMNS")
        with _connect(self.path) as con, con:
            for r in rows:
                self._put(con, r, newer_only=False)
        return len(rows)

    def _put(self, con: sqlite3.Connection, row: dict, newer_only: bool = True) -> str:
        """Store one row; returns added | replaced | unchanged | failure. With `newer_only` (merge), a row older
        than the stored one of its configuration leaves that one in place."""
        sc = self.schema
        key = [_cell(row.get(k)) for k in KEY]
        old = next(_select(sc, con, "results", _MATCH, key), None)
        if old is not None and _same(sc, old, row):
            return "unchanged"
        stale = old is not None and newer_only and (old["created_at"] or "") > (row.get("created_at") or "")
        if row.get("status") != "ok":
            if stale or next(_select(sc, con, "results", "status IS 'ok' AND " + _stands_for(row)[0],
                                     _stands_for(row)[1]), None):
                _insert(sc, con, "failures", row)
                return "failure"
        elif stale and old["status"] == "ok":
            return "unchanged"
        where, args = _standing_for(row)
        for f in _select(sc, con, "results", "status IS NOT 'ok' AND " + where, args):
            _insert(sc, con, "failures", f)
            con.execute(f"DELETE FROM results WHERE {_MATCH}", [_cell(f[k]) for k in KEY])
        con.execute(f"DELETE FROM results WHERE {_MATCH}", key)   # an older ok row: re-measured
        _insert(sc, con, "results", row)
        return "added" if old is None else "replaced"

    def rows(self, **filters) -> list[dict]:
        """Rows as dicts of the columns; `col=value` or `col=[v1, v2]` filters (None matches NULL)."""
        sc, where, args = self.schema, [], []
        for col, value in filters.items():
            if col not in sc.types:
                raise DeployBenchError(f"{self.path}: unknown filter column '{col}' (known: {', '.join(sc.columns)})")
            values = list(value) if isinstance(value, (list, tuple, set)) else [value]
            where.append("(" + " OR ".join(f"{col} IS ?" for _ in values) + ")")
            args += [_cell(v) for v in values]
        sql = f"SELECT {', '.join(sc.columns)} FROM results"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY " + ", ".join(KEY)
        with _connect(self.path) as con:
            return [_row(sc, sc.columns, v) for v in con.execute(sql, args)]

    def keys(self, status: str | None = "ok") -> set[Key]:
        """Config keys present with that status (None: any status) — what bench may skip."""
        sql = f"SELECT {', '.join(KEY)} FROM results" + (" WHERE status IS ?" if status is not None else "")
        with _connect(self.path) as con:
            return {Key(*r) for r in con.execute(sql, [status] if status is not None else [])}

    def failures(self) -> list[dict]:
        """Failed/skipped attempts kept apart from `results` (their configuration has an ok row, or a newer one)."""
        with _connect(self.path) as con:
            return list(_select(self.schema, con, "failures", "1 ORDER BY " + ", ".join(KEY) + ", created_at", []))

    def export_csv(self, path: str | Path) -> Path:
        """Write all rows as CSV (header = the columns, empty cell for None), atomically."""
        path, cols = Path(path), self.schema.columns
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(cols)
            for r in self.rows():
                w.writerow(["" if r[c] is None else _cell(r[c]) for c in cols])
        return path

    def merge(self, paths: Iterable[str | Path]) -> MergeCounts:
        """Fold other results dbs in (their `failures` too). Per configuration: the newer `created_at` wins, except
        that an ok row is never replaced by a failed/skipped one (that one is kept in `failures`)."""
        sc, incoming, failed = self.schema, [], []
        for p in map(Path, paths):
            with _connect(p) as con:
                names = [r[1] for r in con.execute("PRAGMA table_info(results)")]
                if not names or not set(KEY) <= set(names):
                    raise DeployBenchError(f"{p}: has no deploybench `results` table (is it a results.db?)")
                incoming += [_row(sc, names, v) for v in con.execute(f"SELECT {', '.join(names)} FROM results")]
                fnames = [r[1] for r in con.execute("PRAGMA table_info(failures)")]
                if fnames:
                    failed += [_row(sc, fnames, v) for v in con.execute(f"SELECT {', '.join(fnames)} FROM failures")]
        counts = dict.fromkeys(("added", "replaced", "unchanged", "failure"), 0)
        with _connect(self.path) as con, con:
            for row in incoming:
                counts[self._put(con, row)] += 1
            for row in failed:
                _insert(sc, con, "failures", row)
        return MergeCounts(counts["added"], counts["replaced"], counts["unchanged"], counts["failure"])
