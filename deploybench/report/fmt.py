"""Markdown building blocks shared by the report's sections."""
from __future__ import annotations


def table(head: list[str], body: list[list]) -> str:
    """A Markdown table; cells are str()-ed, with pipes escaped and newlines folded."""
    esc = lambda x: str(x).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    return "\n".join(lines + ["| " + " | ".join(esc(x) for x in row) + " |" for row in body])
