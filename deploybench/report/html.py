"""reports/report.html: one self-contained file (plotly.js inlined, no CDN) with interactive plots per device,
a sortable table and the flags. A tiny inline script records JS errors in <html data-errors> for tests."""
from __future__ import annotations

import html
import math
from collections import defaultdict

import plotly.graph_objects as go
import plotly.offline
from plotly.subplots import make_subplots

from .aggregate import backbone_label, faster_text, ok_rows, p50_err
from .view import View, build, color_index, panels, config_text, device_title, flag_text, pick_text, top1_text
from .paper import html_section as paper_section
from .pareto import pareto_rows
from .int8 import int8_html
from .profile import profile_html
from .select import ci_text, num

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]
SYMBOLS = {"fp32": "circle", "fp16": "square", "bf16": "diamond", "int8": "triangle-up"}
ERROR_HOOK = """<script>
(function(){var d=document.documentElement,errs=[];d.setAttribute('data-errors','');
function rec(m){errs.push(String(m));d.setAttribute('data-errors',errs.join(' | '));}
window.addEventListener('error',function(e){rec(e.message||e);});
window.addEventListener('unhandledrejection',function(e){rec('unhandled rejection: '+e.reason);});
var ce=console.error;console.error=function(){rec(Array.prototype.join.call(arguments,' '));ce.apply(console,arguments);};
})();
</script>"""
SORT_JS = """<script>
document.querySelectorAll('table.sortable th').forEach(function(th,i){th.addEventListener('click',function(){
var tb=th.closest('table').tBodies[0],asc=th.getAttribute('data-dir')!=='asc';
th.closest('tr').querySelectorAll('th').forEach(function(h){h.removeAttribute('data-dir');});
th.setAttribute('data-dir',asc?'asc':'desc');
var rows=Array.prototype.slice.call(tb.rows);rows.sort(function(a,b){
var x=a.cells[i].getAttribute('data-v'),y=b.cells[i].getAttribute('data-v');
var nx=parseFloat(x),ny=parseFloat(y),r;
if(x===''||y===''){r=(x==='')-(y==='');return r;}
r=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);return asc?r:-r;});
rows.forEach(function(r){tb.appendChild(r);});});});
document.documentElement.setAttribute('data-plots',document.querySelectorAll('.main-svg').length);
</script>"""
CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1500px;
color:#1d2330;padding:0 16px}h1{margin-bottom:4px}.meta{color:#5b6475;margin-top:0}
h2{border-bottom:2px solid #e3e7ef;padding-bottom:4px;margin-top:32px}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:12px}.card{border:1px solid #e3e7ef;border-radius:8px;padding:6px}
table{border-collapse:collapse;font-size:13px;width:100%}th,td{padding:4px 8px;border-bottom:1px solid #edf0f5;
text-align:right;white-space:nowrap}th{background:#f5f7fb;cursor:pointer;position:sticky;top:0;user-select:none}
th[data-dir=asc]:after{content:' \\25B2'}th[data-dir=desc]:after{content:' \\25BC'}
td.t,th.t{text-align:left}tr:hover td{background:#f8faff}td.star{color:#d4a017;text-align:center}
.flag{color:#b3261e}ul{line-height:1.5}
.wrap{max-height:640px;overflow:auto;border:1px solid #e3e7ef;border-radius:8px}"""


def _colors(labels) -> dict[str, str]:
    return {b: PALETTE[i % len(PALETTE)] for b, i in color_index(labels).items()}


def _hover(c: dict) -> str:
    return (f"<b>{html.escape(backbone_label(c))}</b><br>{c['runtime']} {c['precision']} ({c.get('format')})"
            f"<br>{c['dataset']} f={c['fraction']:g}<br>top-1 {top1_text(c)} %"
            f"<br>p50 {num(c['latency_ms_p50']) if c.get('latency_ms_p50') else '–'} ms, batch {c['latency_batch']}"
            f" (95 % CI {ci_text(c)})<br>size {num(c['size_mb']) if c.get('size_mb') else '–'} MB")


def _scatter_by_device(view: View, x: str, title: str, xtitle: str, log_x: bool) -> go.Figure:
    devs, tables = view.plot_devices, view.plot_tables()
    colors = _colors(backbone_label(c) for t in tables for c in t["configs"])
    fig = make_subplots(rows=1, cols=len(devs), shared_yaxes=True, subplot_titles=list(devs.values()),
                        horizontal_spacing=0.04)
    seen = set()
    for col, fp in enumerate(devs, 1):
        for t in (t for t in tables if t["device_fingerprint"] == fp):
            pts = [c for c in t["configs"] if c.get(x) and c.get("top1_mean") is not None]
            for bb in sorted({backbone_label(c) for c in pts}):
                cs = [c for c in pts if backbone_label(c) == bb]
                err = [p50_err(c) for c in cs] if x == "latency_ms_p50" else None
                fig.add_trace(go.Scatter(
                    x=[c[x] for c in cs], y=[c["top1_mean"] for c in cs], mode="markers", name=bb, legendgroup=bb,
                    error_x=dict(type="data", symmetric=False, array=[e[1] for e in err],
                                 arrayminus=[e[0] for e in err], width=0, thickness=1, color=colors[bb])
                    if err else None,
                    showlegend=bb not in seen, hovertext=[_hover(c) for c in cs], hoverinfo="text",
                    marker=dict(color=colors[bb], size=10, symbol=[SYMBOLS.get(c["precision"], "x") for c in cs],
                                line=dict(width=[2 if c.get("pareto") and x == "latency_ms_p50" else 0 for c in cs],
                                          color="black"))), row=1, col=col)
                seen.add(bb)
            front = pareto_rows(pts, "top1_mean", x)
            fig.add_trace(go.Scatter(x=[c[x] for c in front], y=[c["top1_mean"] for c in front], mode="lines",
                                     line=dict(color="black", width=1, shape="hv"), name="Pareto front",
                                     legendgroup="pareto", showlegend="pareto" not in seen, hoverinfo="skip"),
                          row=1, col=col)
            seen.add("pareto")
        xs = [c[x] for t in tables if t["device_fingerprint"] == fp for c in t["configs"] if c.get(x)]
        ticks = _ticks_125(min(xs), max(xs)) if log_x and xs else None
        fig.update_xaxes(title_text=xtitle, type="log" if log_x else "linear", tickvals=ticks,
                         ticktext=[f"{v:g}" for v in ticks] if ticks else None, row=1, col=col)
    _precision_legend(fig, {c["precision"] for t in tables for c in t["configs"]})
    fig.update_yaxes(title_text="top-1 (%)", row=1, col=1)
    fig.update_layout(title=title, height=460, template="plotly_white", margin=dict(t=70, l=60, r=20, b=50))
    return fig


def _ticks_125(lo: float, hi: float) -> list[float]:
    """1-2-5 tick values covering [lo, hi] (log axes with readable labels)."""
    e = math.floor(math.log10(lo))
    vals = [m * 10.0 ** k for k in range(e - 1, math.ceil(math.log10(hi)) + 1) for m in (1, 2, 5)]
    return [float(f"{v:.3g}") for v in vals if lo / 1.5 <= v <= hi * 1.5]


def _precision_legend(fig: go.Figure, precisions) -> None:
    """Legend entries explaining the marker symbols (one per precision)."""
    for p in sorted(precisions):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=p, legendgroup="precision",
                                 legendgrouptitle_text="precision" if p == min(precisions) else None,
                                 marker=dict(color="#888", size=10, symbol=SYMBOLS.get(p, "x")), hoverinfo="skip"))


def _throughput(view: View) -> go.Figure:
    devs, lines = view.plot_devices, view.throughput
    colors = _colors(ln.key[1] for ln in lines)
    dashes = dict(zip(sorted({ln.key[2] for ln in lines}), ["solid", "dash", "dot", "dashdot", "longdash"] * 3))
    batches = sorted({b for ln in lines for b in ln.x})
    fig = make_subplots(rows=1, cols=len(devs), shared_yaxes=True, subplot_titles=list(devs.values()),
                        horizontal_spacing=0.04)
    for col, fp in enumerate(devs, 1):
        for ln in lines:
            f, bb, rt, pr = ln.key
            if f == fp:
                fig.add_trace(go.Scatter(
                    x=ln.x, y=ln.y, mode="lines+markers", name=f"{bb} {rt} {pr}",
                    legendgroup=f"{bb} {rt} {pr}", showlegend=col == 1,
                    line=dict(color=colors[bb], dash=dashes[rt]), marker=dict(symbol=SYMBOLS.get(pr, "x"), size=8),
                    hovertemplate=f"{bb} {rt} {pr}<br>batch %{{x}}: %{{y:.1f}} img/s<extra></extra>"), row=1, col=col)
        fig.update_xaxes(title_text="batch size", type="log", tickvals=batches, row=1, col=col)
    ys = [v for ln in lines for v in ln.y]
    ticks = _ticks_125(min(ys), max(ys)) if ys else None
    fig.update_yaxes(type="log", tickvals=ticks, ticktext=[f"{v:g}" for v in ticks] if ticks else None)
    fig.update_yaxes(title_text="throughput (img/s)", row=1, col=1)
    fig.update_layout(title="Throughput vs batch size", height=460, template="plotly_white",
                      legend=dict(font=dict(size=10)), margin=dict(t=70, l=60, r=20, b=50))
    return fig


def _fractions(view: View) -> go.Figure | None:
    lines = view.fractions
    if not lines:
        return None
    colors, by_ds = _colors(ln.key[1] for ln in lines), panels(lines)
    fig = make_subplots(rows=1, cols=len(by_ds), subplot_titles=list(by_ds), horizontal_spacing=0.06)
    for col, ds_lines in enumerate(by_ds.values(), 1):
        for ln in ds_lines:
            bb = ln.key[1]
            fig.add_trace(go.Scatter(x=ln.x, y=ln.y, mode="lines+markers", name=bb, legendgroup=bb,
                                     showlegend=col == 1, line=dict(color=colors[bb]), error_y=dict(array=ln.err)),
                          row=1, col=col)
        fig.update_xaxes(title_text="fraction of training data", row=1, col=col)
    fig.update_yaxes(title_text="top-1 (%)", row=1, col=1)
    fig.update_layout(title="Top-1 vs data fraction (torch fp32, mean ± std over seeds)", height=420,
                      template="plotly_white", margin=dict(t=70, l=60, r=20, b=50))
    return fig


def _cell(v, text: str | None = None, cls: str = "") -> str:
    dv = "" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v))
    shown = text if text is not None else ("–" if v is None else (num(v) if isinstance(v, float) else str(v)))
    return f'<td{f" class={cls}" if cls else ""} data-v="{html.escape(dv)}">{html.escape(shown)}</td>'


def _table(view: View) -> str:
    head = [("device", "t"), ("dataset", "t"), ("fraction", ""), ("backbone", "t"), ("runtime", "t"),
            ("precision", "t"), ("top-1 %", ""), ("± std", ""), ("Δ pt", ""), ("p50 ms", ""), ("p50 95 % CI", "t"),
            ("next faster (p50 ratio, 95 % CI)", "t"), ("p99 ms", ""),
            ("img/s", ""), ("size MB", ""), ("mem MB", ""), ("★", ""), ("flags", "t")]
    body = []
    for t in view.tables:
        for c in t["configs"]:
            body.append("<tr>" + "".join([
                _cell(c.get("device"), cls="t"), _cell(c["dataset"], cls="t"), _cell(c["fraction"]),
                _cell(config_text(c, c["extra"]), cls="t"), _cell(c["runtime"], cls="t"),
                _cell(c["precision"], cls="t"),
                _cell(c.get("top1_mean"), None if c.get("top1_mean") is None else f"{c['top1_mean']:.2f}"),
                _cell(c.get("top1_std"), None if c.get("top1_std") is None else f"{c['top1_std']:.2f}"),
                _cell(c.get("top1_delta"), None if c.get("top1_delta") is None else f"{c['top1_delta']:+.2f}"),
                _cell(c.get("latency_ms_p50")), _cell(ci_text(c), cls="t"),
                _cell(faster_text(c, lambda o: f"{backbone_label(o)} {o['runtime']} {o['precision']}"), cls="t"),
                _cell(c.get("latency_ms_p99")),
                _cell(c.get("throughput_ips")),
                _cell(c.get("size_mb")), _cell(c["mem_mb"]),
                _cell(int(c["pareto"]), "★" if c["pareto"] else "", "star"),
                _cell("; ".join(c["flags"]), cls="t flag")]) + "</tr>")
    ths = "".join(f'<th class="{cls}">{html.escape(h)}</th>' for h, cls in head)
    return (f'<div class="wrap"><table class="sortable"><thead><tr>{ths}</tr></thead><tbody>{"".join(body)}'
            f"</tbody></table></div>")


def _bad_rows(rows: list[dict]) -> str:
    grouped: dict[tuple, int] = defaultdict(int)
    for r in rows:
        if r.get("status") != "ok":
            grouped[(r.get("device") or "?", r.get("status"), r.get("runtime"), r.get("precision"),
                     r.get("status_reason") or "–")] += 1
    return "<ul>" + "".join(f"<li><b>{html.escape(str(st))}</b> {html.escape(f'{rt} {pr} on {dev}')} "
                            f"({n} rows): {html.escape(str(reason))}</li>"
                            for (dev, st, rt, pr, reason), n in sorted(grouped.items(), key=lambda kv: str(kv[0]))) \
        + "</ul>" if grouped else "<p>None.</p>"


def render_html(rows: list[dict], cfg=None, noisy_cv: float | None = None) -> str:
    """The whole self-contained report page."""
    return html_page(build(rows, cfg, noisy_cv))


def html_page(view: View) -> str:
    """The whole self-contained report page of `view`."""
    rows, name, devs = view.rows, view.name, view.devices
    meta = (f"Generated {view.generated} &middot; {view.summary} &middot; devices: "
            + "; ".join(html.escape(device_title(fp, n).replace("`", "")) for fp, n in devs.items()))
    body = [f"<h1>deploybench report: {html.escape(name)}</h1>", f'<p class="meta">{meta}</p>']
    if ok_rows(rows):
        figs = [_scatter_by_device(view, "latency_ms_p50", "Accuracy vs single-stream p50 latency (Pareto front per "
                                   "device; outlined = on the front; bars = 95 % CI of p50)",
                                   "p50 latency, batch 1 (ms, log)", True),
                _scatter_by_device(view, "size_mb", "Accuracy vs artifact size", "size (MB)", False),
                _throughput(view), _fractions(view)]
        divs = [f.to_html(full_html=False, include_plotlyjs=False, div_id=f"plot{i}",
                          config={"displaylogo": False, "responsive": True}) for i, f in enumerate(figs) if f]
        body += ["<h2>Best choices</h2><p class=meta>Single-stream (batch 1), largest data fraction, top-1 mean "
                 "over seeds.</p>"] + [
            f"<h3>{html.escape(dev)}</h3><ul>" + "".join(
                f"<li>{html.escape(what)}: <b>{html.escape(pick_text(c))}</b></li>" for what, c in picks) + "</ul>"
            for _, dev, picks in view.picks]
        body += ["<h2>Plots</h2>"] + [f'<div class="card">{d}</div>' for d in divs]
        items = [flag_text(t, c, on_device=True) for t, c in view.flagged()]
        body += ["<h2>Flags</h2>", "<ul>" + "".join(f'<li class="flag">{html.escape(x)}</li>' for x in items)
                 + "</ul>" if items else "<p>Nothing flagged.</p>"]
        body += ["<h2>All configurations</h2><p class=meta>Click a header to sort. Top-1 mean over seeds; "
                 "p50/p99 at batch 1; img/s at the largest batch; ★ = Pareto-optimal on its device.</p>",
                 _table(view)]
    else:
        body.append("<p>There are no results yet: run <code>deploybench bench</code> first.</p>")
    body.append(paper_section(rows))
    body += [int8_html(rows, view.cfg), profile_html(rows, view.cfg)]
    body += ["<h2>Skipped and failed</h2>", _bad_rows(rows)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>deploybench report: {html.escape(name)}</title>{ERROR_HOOK}<style>{CSS}</style>"
            f"<script>{plotly.offline.get_plotlyjs()}</script></head><body>\n" + "\n".join(body)
            + f"\n{SORT_JS}\n</body></html>\n")
