"""The result row: typed parts (run, config, accuracy, parity, latency, memory, outcome) whose fields are the
columns of reports/results.csv and results.db. `COLUMNS`, the SQLite types and the CSV header derive from
`ResultRow`; adding a column is adding one field to a part (`col()`: appended after today's columns).

A field's `col(pos)` is its place in the column contract (DESIGN.md's list, then the README's extensions), so
the flat order stays what it was while the parts group the fields by meaning."""
import dataclasses
import functools
import itertools
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Optional, get_args, get_type_hints

_APPENDED = itertools.count(1000)   # fields added without a position follow the contract's, in definition order


def col(pos: Optional[int] = None) -> Any:
    """A column field (default None) at contract position `pos`, or appended after every positioned one."""
    return field(default=None, metadata={"pos": next(_APPENDED) if pos is None else pos})


class _Part:
    def flat(self) -> dict:
        """{column: value} of this part."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass
class Run(_Part):
    """What was trained: from the run's meta.json."""
    run_id: Optional[str] = col(0)
    backbone: Optional[str] = col(1)
    dataset: Optional[str] = col(2)
    domain: Optional[str] = col(3)
    fraction: Optional[float] = col(4)
    seed: Optional[int] = col(5)
    pretrained: Optional[bool] = col(6)
    params_m: Optional[float] = col(32)
    gmacs: Optional[float] = col(33)
    image_size: Optional[int] = col(48)


@dataclass
class Config(_Part):
    """What was measured: artifact x runtime x batch size x threads on a device (store.KEY is drawn from here)."""
    artifact: Optional[str] = col(7)
    format: Optional[str] = col(8)
    runtime: Optional[str] = col(9)
    precision: Optional[str] = col(10)
    device: Optional[str] = col(11)
    device_fingerprint: Optional[str] = col(12)
    batch_size: Optional[int] = col(13)
    threads: Optional[int] = col(14)
    size_mb: Optional[float] = col(31)
    scenario: Optional[str] = col(38)
    recipe: Optional[str] = col(54)
    compute_precision: Optional[str] = col(56)


@dataclass
class Accuracy(_Part):
    """Top-1/5 on the test images through the artifact, and the drop vs the run's torch fp32 reference."""
    top1: Optional[float] = col(15)
    top5: Optional[float] = col(16)
    top1_delta_vs_torch_fp32: Optional[float] = col(17)
    accuracy_flag: Optional[str] = col(46)
    accuracy_images: Optional[int] = col(57)
    top1_delta_se: Optional[float] = col(58)   # paired standard error of top1_delta_vs_torch_fp32 (bench/accuracy.py)


@dataclass
class Parity(_Part):
    """The runner's logits vs the torch fp32 reference on the same images (bench/accuracy.py)."""
    parity_max_rel_err: Optional[float] = col(18)
    parity_top1_agree: Optional[float] = col(19)
    parity_median_rel_err: Optional[float] = col(47)


@dataclass
class Latency(_Part):
    """Pooled latency of the configuration's executions (stats.pool) and what follows from it."""
    latency_ms_mean: Optional[float] = col(20)
    latency_ms_p50: Optional[float] = col(21)
    latency_ms_p90: Optional[float] = col(22)
    latency_ms_p95: Optional[float] = col(23)
    latency_ms_p99: Optional[float] = col(24)
    latency_ms_p50_ci_low: Optional[float] = col(25)
    latency_ms_p50_ci_high: Optional[float] = col(26)
    latency_cv: Optional[float] = col(27)
    throughput_ips: Optional[float] = col(28)
    latency_ms_std: Optional[float] = col(39)
    latency_ms_min: Optional[float] = col(40)
    latency_ms_max: Optional[float] = col(41)
    latency_count: Optional[int] = col(42)
    latency_executions: Optional[int] = col(43)
    latency_ms_device_p50: Optional[float] = col(44)
    noisy: Optional[bool] = col(45)
    efficiency: Optional[float] = col(49)
    latency_ms_execution_p50s: Optional[list] = col(53)


@dataclass
class Memory(_Part):
    """Peak memory of the configuration's worker process (host) and device."""
    peak_host_mem_mb: Optional[float] = col(29)
    peak_device_mem_mb: Optional[float] = col(30)
    peak_device_mem_method: Optional[str] = col(51)

    @property
    def mb(self) -> Optional[float]:
        """The memory that matters: device memory where measured, else host memory."""
        return self.peak_host_mem_mb if self.peak_device_mem_mb is None else self.peak_device_mem_mb


@dataclass
class Outcome(_Part):
    """How the measurement went, when, and with what."""
    status: Optional[str] = col(34)
    status_reason: Optional[str] = col(35)
    created_at: Optional[str] = col(36)
    versions: Optional[dict] = col(37)
    config_name: Optional[str] = col(50)
    bench_call: Optional[str] = col(52)
    profile_path: Optional[str] = col(55)


@dataclass
class ResultRow:
    """One result row, by part; `flat()` / `from_flat()` convert to and from the {column: value} dict that the
    store, the CSV and the report use."""
    run: Run = field(default_factory=Run)
    config: Config = field(default_factory=Config)
    accuracy: Accuracy = field(default_factory=Accuracy)
    parity: Parity = field(default_factory=Parity)
    latency: Latency = field(default_factory=Latency)
    memory: Memory = field(default_factory=Memory)
    outcome: Outcome = field(default_factory=Outcome)

    def flat(self) -> dict:
        """{column: value} in column order."""
        parts = {}
        for f in dataclasses.fields(self):
            parts |= getattr(self, f.name).flat()
        return {c: parts[c] for c in columns(type(self))}

    @classmethod
    def from_flat(cls, row: dict) -> "ResultRow":
        """A row from a {column: value} dict (missing columns None; unknown keys raise KeyError)."""
        unknown = set(row) - set(columns(cls))
        if unknown:
            raise KeyError(f"unknown result column(s) {sorted(unknown)}")
        hints = get_type_hints(cls)
        return cls(**{f.name: hints[f.name](**{p.name: row.get(p.name) for p in dataclasses.fields(hints[f.name])})
                      for f in dataclasses.fields(cls)})


@functools.lru_cache(maxsize=None)
def _column_fields(row_type: type) -> tuple[tuple[str, type], ...]:
    """(column, annotation) of `row_type` in contract order; resolved once per row type (every flat() and
    from_flat() asks, and get_type_hints is slow)."""
    hints = get_type_hints(row_type)
    out = []
    for part in dataclasses.fields(row_type):
        part_type = hints[part.name]
        part_hints = get_type_hints(part_type)
        out += [(f.metadata["pos"], f.name, part_hints[f.name]) for f in dataclasses.fields(part_type)]
    return tuple((name, t) for _, name, t in sorted(out, key=lambda x: x[0]))


def columns(row_type: type = ResultRow) -> list[str]:
    """Column names of `row_type` in contract order."""
    return [name for name, _ in _column_fields(row_type)]


class Schema(NamedTuple):
    """What the store needs of a row type: columns in order, their SQLite types and the bool ones."""
    columns: list[str]
    types: dict[str, str]
    bools: frozenset


_SQL = {float: "REAL", int: "INTEGER", bool: "INTEGER", str: "TEXT", list: "TEXT", dict: "TEXT"}   # lists/dicts: JSON


def schema(row_type: type = ResultRow) -> Schema:
    fields = [(name, next(a for a in get_args(t) if a is not type(None))) for name, t in _column_fields(row_type)]
    return Schema([n for n, _ in fields], {n: _SQL[t] for n, t in fields},
                  frozenset(n for n, t in fields if t is bool))


COLUMNS = columns()
