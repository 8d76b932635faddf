"""``python -m app.language.catalog [PATH]``: write the docs table (default docs/functions.md)."""

from __future__ import annotations

import sys
from pathlib import Path

from app.language.catalog.table import markdown

DEFAULT = Path(__file__).resolve().parents[3] / "docs" / "functions.md"


def main(argv: list[str]) -> None:
    """Write the table to the given path, or to the repository's docs/functions.md."""
    path = Path(argv[0]) if argv else DEFAULT
    path.write_text(markdown(), encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
