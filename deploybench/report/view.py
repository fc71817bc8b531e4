"""The report's view model, built once from the rows and rendered by markdown.py, html.py and plots.py: the header,
the ranked tables (each config with its flags, its distinguishing text and its memory), the flagged configs, the
picks per constraint and the plot data. Labels shared by the renderers live here too."""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import NamedTuple, Optional

from .aggregate import backbone_label, devices, distinguish, flags, fraction_series, ok_rows, order_text, ranked, \
    resolved, seed_mean_rows, throughput_series
from .select import mem_mb, num, select

STATUSES = ("ok", "skipped", "failed")
CONSTRAINT_KEYS = ("max_latency_ms", "max_p99_ms", "max_size_mb", "max_mem_mb", "min_top1")


class Line(NamedTuple):
    """One plotted line: its key, its x values, and the mean and std (0 for one value) of y at each."""
    key: tuple
    x: list
    y: list
    err: list


def _lines(series: dict) -> list[Line]:
    out = []
    for key, by_x in sorted(series.items(), key=lambda kv: tuple(map(str, kv[0]))):
        xs = sorted(by_x)
        out.append(Line(key, xs, [statistics.fmean(by_x[x]) for x in xs],
                        [statistics.stdev(by_x[x]) if len(by_x[x]) > 1 else 0 for x in xs]))
    return out


def panels(lines: list[Line]) -> dict:
    """{first key part (e.g. dataset): its lines}, sorted: one plot panel each."""
    out: dict = {}
    for ln in lines:
        out.setdefault(ln.key[0], []).append(ln)
    return dict(sorted(out.items()))


@dataclass
class View:
    """Everything the report shows; `tables` are aggregate.ranked()'s, each config gaining `flags`, `extra`
    (what sets it apart from its look-alikes, aggregate.distinguish), `index` (its rank in its table) and `mem_mb`
    (select.mem_mb: device memory where measured, else host)."""
    name: str
    rows: list[dict]
    noisy_cv: float
    devices: dict[str, str]          # {fingerprint: name}, every row
    summary: str                     # "N rows (a ok, b skipped, c failed)"
    cfg: object = None               # the report config (config.Config) or None
    generated: str = field(default_factory=lambda: f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}")
    tables: list[dict] = field(default_factory=list)
    picks: list[tuple] = field(default_factory=list)   # [(fingerprint, device name, [(what, pick or None)])]
    throughput: list[Line] = field(default_factory=list)   # key (fingerprint, backbone label, runtime, precision)
    fractions: list[Line] = field(default_factory=list)    # key (dataset, backbone label); [] under two fractions

    def flagged(self, fp: Optional[str] = None) -> list[tuple[dict, dict]]:
        """(table, config) of every flagged config, of device `fp` (None: all devices)."""
        return [(t, c) for t in self.tables if fp in (None, t["device_fingerprint"]) for c in t["configs"]
                if c["flags"]]

    def plot_tables(self) -> list[dict]:
        """The tables of the largest data fraction (what the accuracy plots show)."""
        fmax = max((t["fraction"] for t in self.tables if t["fraction"] is not None), default=None)
        return [t for t in self.tables if t["fraction"] == fmax]

    @property
    def plot_devices(self) -> dict[str, str]:
        """{fingerprint: name} of the devices with ok rows (one plot panel each)."""
        return devices(ok_rows(self.rows))


def build(rows: list[dict], cfg=None, noisy_cv: Optional[float] = None) -> View:
    """The view of `rows` (a report config `cfg` gives the name, the noisy-CV threshold and the constraints)."""
    noisy_cv = noisy_cv if noisy_cv is not None else (cfg.bench.latency.noisy_cv if cfg is not None else 0.15)
    name = cfg.name if cfg is not None else next((r["config_name"] for r in rows if r.get("config_name")), "results")
    counts = {s: sum(r.get("status") == s for r in rows) for s in STATUSES}
    view = View(name, rows, noisy_cv, devices(rows),
                f"{len(rows)} rows ({', '.join(f'{n} {s}' for s, n in counts.items())})", cfg)
    view.tables = ranked(rows)
    for t in view.tables:
        for i, (c, extra) in enumerate(zip(t["configs"], distinguish(t["configs"])), 1):
            c.update(flags=flags(c, noisy_cv), extra=extra, index=i, mem_mb=mem_mb(c))
    view.picks = choices(rows, cfg)
    view.throughput, view.fractions = _lines(throughput_series(rows)), _lines(fraction_series(rows))
    return view


def constraint_sets(cfg) -> list[tuple[str, dict]]:
    """The config's named constraints."""
    if cfg is None:
        return []
    return [(c.name, {k: getattr(c, k) for k in CONSTRAINT_KEYS}) for c in cfg.report.constraints]


def choices(rows: list[dict], cfg=None) -> list[tuple[str, str, list[tuple[str, Optional[dict]]]]]:
    """Per device: [(device fingerprint, device name, [(what, pick or None), ...])] — most accurate, fastest,
    most accurate under the device's median p50, and each named constraint of `cfg`, per dataset. Picks are
    single-stream (batch 1) configurations on the largest fraction of their dataset, top-1 averaged over seeds."""
    fmax: dict[str, float] = {}
    for r in ok_rows(rows):
        if r.get("fraction") is not None:
            fmax[r["dataset"]] = max(fmax.get(r["dataset"], 0.0), r["fraction"])
    means = [r for r in seed_mean_rows(rows) if r.get("fraction") == fmax.get(r["dataset"])]
    out = []
    for fp, name in devices(rows).items():
        mine = [r for r in means if r.get("device_fingerprint") == fp and r.get("batch_size") == 1]
        p50s = [r["latency_ms_p50"] for r in mine if r.get("latency_ms_p50") is not None]
        picks: list[tuple[str, Optional[dict]]] = []
        for ds in sorted({r["dataset"] for r in mine}):
            rs = [r for r in mine if r["dataset"] == ds]
            picks.append((f"{ds}: most accurate", select(rs).best))
            by_p50 = sorted((r for r in rs if r.get("latency_ms_p50") is not None),
                            key=lambda r: (r["latency_ms_p50"], -(r.get("top1") or 0)))
            unsure = len(by_p50) > 1 and not resolved(by_p50[0], by_p50[1])
            picks.append((f"{ds}: fastest" + (f" (not resolved vs {pick_name(by_p50[1])}: "
                                              f"{order_text(by_p50[0], by_p50[1])})" if unsure else ""),
                          by_p50[0] if by_p50 else None))
            if p50s:
                med = statistics.median(p50s)
                picks.append((f"{ds}: most accurate under the median p50 ({num(med)} ms)",
                               select(rs, max_latency_ms=med).best))
            for cname, cons in constraint_sets(cfg):
                active = ", ".join(f"{k} {num(v)}" for k, v in cons.items() if v is not None)
                picks.append((f"{ds}: {cname} ({active})", select(rs, **cons).best))
        if picks:
            out.append((fp, name, picks))
    return out


def color_index(labels) -> dict[str, int]:
    """{label: its colour's index}, the same in every plot (labels sorted)."""
    return {b: i for i, b in enumerate(sorted(set(labels)))}


def fixed(v, nd: int = 2, sign: bool = False) -> str:
    """v with `nd` decimals (and its sign), "–" for None."""
    if v is None:
        return "–"
    return f"{v:+.{nd}f}" if sign else f"{v:.{nd}f}"


def short(v) -> str:
    """num(v), "–" for None."""
    return "–" if v is None else num(v)


def top1_text(c: dict) -> str:
    if c.get("top1_mean") is None:
        return "–"
    return f"{c['top1_mean']:.2f}" + (f" ± {c['top1_std']:.2f}" if c.get("top1_std") is not None else "")


def device_title(fp: Optional[str], name: str) -> str:
    return f"{name} (`{str(fp)[:16]}`)"


def config_text(c: dict, extra: str = "") -> str:
    """Backbone label plus what tells the config apart from its look-alikes, e.g. "resnet18 (scratch), 2 threads"."""
    return backbone_label(c) + (f", {extra}" if extra else "")


def flag_text(t: dict, c: dict, on_device: bool = False) -> str:
    """One flagged config: what it is, where, and its flags."""
    where = f" on {t['device']}" if on_device else ""
    return (f"{config_text(c, c['extra'])} {c['runtime']} {c['precision']}{where} ({t['dataset']}, "
            f"f{t['fraction']:g}): {'; '.join(c['flags'])}")


def pick_name(c: dict) -> str:
    """e.g. "resnet18 (scratch) openvino int8 (2 threads)"."""
    threads = f" ({c['threads']} thread{'s' if c['threads'] > 1 else ''})" if c.get("threads") else ""
    return f"{backbone_label(c)} {c['runtime']} {c['precision']}{threads}"


def pick_text(c: Optional[dict]) -> str:
    if c is None:
        return "nothing fits"
    return f"{pick_name(c)} — top-1 {fixed(c.get('top1'))} %, p50 {short(c.get('latency_ms_p50'))} ms, " \
           f"{fixed(c.get('size_mb'))} MB"
