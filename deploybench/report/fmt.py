"""Building blocks shared by the report's sections: a Markdown table, and the two vocabularies (MARKDOWN, HTML)
that a section written once renders itself in."""
from __future__ import annotations

import html
from pathlib import Path


def workdir_root(cfg) -> Path:
    """The workdir a report's files (export.json, profiles) are read from: the config's, else the current folder."""
    return Path(cfg.root) if cfg is not None else Path(".")


def table(head: list[str], body: list[list]) -> str:
    """A Markdown table; cells are str()-ed, with pipes escaped and newlines folded."""
    esc = lambda x: str(x).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    return "\n".join(lines + ["| " + " | ".join(esc(x) for x in row) + " |" for row in body])


def html_table(head: list[str], body: list[list]) -> str:
    ths = "".join(f"<th class=t>{html.escape(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td class=t>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in body)
    return f"<table><thead><tr>{ths}</tr></thead><tbody>{trs}</tbody></table>"


MARKDOWN = {"h": lambda n, t: f"{'#' * n} {t}", "note": lambda t: f"*{t}*", "p": lambda t: t,
            "b": lambda t: f"**{t}**", "list": lambda xs: "\n".join(f"- {x}" for x in xs), "table": table,
            "join": "\n\n"}
HTML = {"h": lambda n, t: f"<h{n}>{html.escape(t)}</h{n}>", "note": lambda t: f"<p class=meta>{html.escape(t)}</p>",
        "p": lambda t: f"<p>{html.escape(t)}</p>", "b": lambda t: f"<p><b>{html.escape(t)}</b></p>",
        "list": lambda xs: "<ul>" + "".join(f'<li class="flag">{html.escape(x)}</li>' for x in xs) + "</ul>",
        "table": html_table, "join": "\n"}
