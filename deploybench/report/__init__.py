"""Report stage: rank results (Pareto, tiers, constraints) into one view (view.py), rendered as report.md,
report.html and plots/*.png."""
from __future__ import annotations

from pathlib import Path
from ..io import write_text


def write_report(store_or_rows, out_dir: Path, cfg=None) -> dict[str, Path]:
    """Write report.md, report.html and plots/*.png under `out_dir` from a ResultStore or a list of row dicts;
    returns {"markdown": path, "html": path, "plot:<name>": path, ...}."""
    from .html import html_page
    from .markdown import markdown
    from .plots import write_plots
    from .view import build

    rows: list[dict] = store_or_rows.rows() if hasattr(store_or_rows, "rows") else list(store_or_rows)
    out_dir = Path(out_dir)
    paths = {"markdown": out_dir / "report.md", "html": out_dir / "report.html"}
    view = build(rows, cfg)   # built once, rendered three ways
    write_text(paths["markdown"], markdown(view))
    write_text(paths["html"], html_page(view))
    paths |= {f"plot:{k}": v for k, v in write_plots(view, out_dir / "plots").items()}
    return paths
