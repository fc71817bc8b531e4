"""report.html in a real headless Chromium (file://, offline): no JS errors, every plotly plot rendered to SVG, the
table sorts on a header click; a screenshot is kept as test-artifacts/report.png."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from deploybench.io import write_text
from deploybench.report.html import ERROR_HOOK, render_html
from test_report import synthetic_rows

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")


def chromium(url: str, profile: Path, *extra: str) -> tuple[str, str]:
    """(dumped DOM after JS ran, stderr log) of a fresh headless Chromium."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000",
           *extra, "--dump-dom", url]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout, p.stderr


def attr(dom: str, name: str) -> str:
    m = re.search(rf'<html[^>]*\s{name}="([^"]*)"', dom)
    assert m, f"<html {name}=...> missing: the page scripts did not run"
    return m.group(1)


def test_report_renders_in_chromium(tmp_path):
    # click the "p50 ms" header once after load: the table must then be sorted by p50 ascending
    click = ("<script>window.addEventListener('load',function(){var th=[].slice.call(document.querySelectorAll("
             "'table.sortable th')).filter(function(h){return h.textContent==='p50 ms';})[0];th.click();});</script>")
    page = render_html(synthetic_rows(seeds=(0, 1)), None).replace("</body>", click + "</body>")
    html = tmp_path / "report.html"
    write_text(html, page)
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    dom, log = chromium(html.as_uri(), tmp_path / "profile", f"--screenshot={shot}", "--window-size=1400,1000")
    assert attr(dom, "data-errors") == ""
    assert "Uncaught" not in log, [line for line in log.splitlines() if "Uncaught" in line]
    for i in range(4):   # latency, size, throughput, fraction plots: each drawn to SVG by plotly
        div = re.search(rf'<div id="plot{i}" class="plotly-graph-div.*?(?=<div id="plot{i + 1}"|</body>)', dom, re.S)
        assert div and 'class="main-svg"' in div.group(0), f"plot{i} not rendered"
    assert int(attr(dom, "data-plots")) >= 8
    assert re.search(r'<th[^>]*data-dir="asc"[^>]*>p50 ms</th>', dom)
    body = dom[dom.index("<tbody>"):dom.index("</tbody>")]
    p50 = [float(v) for v in re.findall(r'<tr>(?:<td[^>]*>[^<]*</td>){9}<td data-v="([^"]+)"', body)]
    assert len(p50) > 100 and p50 == sorted(p50)
    assert shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 30_000


def test_error_hook_catches_errors(tmp_path):
    """Negative control: the data-errors hook really records an uncaught error."""
    page = tmp_path / "bad.html"
    write_text(page, f"<!DOCTYPE html><html><head>{ERROR_HOOK}</head><body><script>notDefinedFn();</script>"
                     "</body></html>")
    dom, _ = chromium(page.as_uri(), tmp_path / "profile")
    assert "notDefinedFn" in attr(dom, "data-errors")
