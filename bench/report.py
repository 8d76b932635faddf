"""The table of a run, in Markdown, and its JSON form."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson

from bench.core import Row

HEADER = ("figure", "nabla", "baseline", "ratio", "goal", "met?")


def _met(row: Row) -> str:
    if row.error is not None:
        return "error"
    return {True: "yes", False: "**no**", None: "-"}[row.met]


def table(rows: list[Row]) -> str:
    """figure | nabla | baseline | ratio | goal | met?, one line per row."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in rows:
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else "-"
        cells = (row.figure, row.nabla, row.baseline, ratio, row.goal, _met(row))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def notes(rows: list[Row]) -> str:
    """What each figure is based on, and the errors of rows that failed."""
    lines = []
    for row in rows:
        if row.error is not None:
            lines.append(f"- {row.key}: ERROR {row.error}")
        elif row.details:
            lines.append(f"- {row.key}: {row.details}")
    return "\n".join(lines)


def save(path: Path, machine: dict[str, Any], settings: dict[str, Any], rows: list[Row]) -> None:
    """Write the run as JSON."""
    document = {"machine": machine, "plan": settings, "rows": [asdict(row) for row in rows]}
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
