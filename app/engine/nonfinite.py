"""Where outputs are NaN or infinite: JSON writes them as null, so a response lists them.

One ``NonFinite`` listing serves the computed outputs (``app.service.response``) and the
values and adjoints of the graph (``app.learning.explanations``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Entries listed in one response; past this, ``nonfinite_count`` gives the total.
MAX_NONFINITE_LISTED = 1000


def kind_of(x: float) -> str:
    """``"nan"``, ``"inf"`` or ``"-inf"``: the kind of a non-finite number."""
    return "nan" if np.isnan(x) else ("inf" if x > 0 else "-inf")


@dataclass
class NonFinite:
    """Non-finite entries: the first ``limit`` listed (field, index, kind), all counted."""

    limit: int | None = MAX_NONFINITE_LISTED
    listed: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0

    def add(self, name: str, array: np.ndarray, prefix: tuple[int, ...] = ()) -> None:
        """List the non-finite entries of ``array`` as ``name``, each index after ``prefix``."""
        finite = np.isfinite(array)
        if finite.all():
            return
        bad = ~finite
        self.count += int(bad.sum())
        room = None if self.limit is None else max(0, self.limit - len(self.listed))
        for index in np.argwhere(bad)[:room]:
            self.listed.append({"field": name, "index": [*prefix, *index.tolist()],
                                "kind": kind_of(float(array[tuple(index)]))})

    def report(self) -> dict[str, Any]:
        """``nonfinite`` (and ``nonfinite_count`` when not all are listed), or nothing."""
        if not self.count:
            return {}
        if self.count > len(self.listed):
            return {"nonfinite": self.listed, "nonfinite_count": self.count}
        return {"nonfinite": self.listed}
