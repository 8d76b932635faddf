"""A differentiation result as readable text tables, for the command line."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def render_result(result: dict[str, Any]) -> str:
    """Value, gradient or Jacobian, and Hessian as aligned tables with coordinate names."""
    coords: list[str] = result["coordinates"]
    nonfinite = {(e["field"], tuple(e["index"])): e["kind"] for e in result.get("nonfinite", [])}
    result, outputs = _matrix_outputs(result)
    vector = isinstance(result.get("value"), list) or "jacobian" in result
    outputs = outputs or (_output_names(result) if vector else ["f"])

    def cell(field: str, index: tuple[int, ...], x: Any) -> str:
        return nonfinite.get((field, index), "null") if x is None else str(x)

    blocks: list[str] = []
    if "value" in result:
        values = result["value"] if vector else [result["value"]]
        blocks.append(_table(["", "value"], [[name, cell("value", (i,) if vector else (), v)]
                                             for i, (name, v) in enumerate(
                                                 zip(outputs, values, strict=True))]))
    if "gradient" in result:
        blocks.append(_table(["", "gradient"], [[c, cell("gradient", (j,), g)] for j, (c, g)
                                                in enumerate(zip(coords, result["gradient"],
                                                                 strict=True))]))
    if "jacobian" in result:
        blocks.append(_matrix("jacobian", outputs, coords, result["jacobian"], cell, ()))
    if "hessian" in result:
        hessians = result["hessian"] if vector else [result["hessian"]]
        for i, (name, h) in enumerate(zip(outputs, hessians, strict=True)):
            label = "hessian" if not vector else f"hessian of {name}"
            blocks.append(_matrix(label, coords, coords, h, cell, (i,) if vector else ()))
    blocks += _past_the_hessian(result, coords)
    return "\n\n".join(blocks)


def _past_the_hessian(result: dict[str, Any], coords: Sequence[str]) -> list[str]:
    """Tensors, directional derivatives, partials, the Taylor polynomial, the check and
    implicit derivatives, as text."""
    blocks: list[str] = []
    for order, tensor in result.get("tensors", {}).items():
        blocks.append(f"tensor of order {order}: {tensor}")
    if "directional" in result:
        blocks.append(_table(["order", "along the direction"],
                             [[str(j), str(d)] for j, d in
                              enumerate(result["directional"], start=1)]))
    if "partials" in result:
        blocks.append(_table(["partial", "value"], [[f"#{i}", str(v)] for i, v in
                                                    enumerate(result["partials"])]))
    if "taylor" in result:
        taylor = result["taylor"]
        lines = [f"Taylor polynomial of order {taylor['order']}: {taylor['polynomial']}"]
        if "remainder" in taylor:
            r = taylor["remainder"]
            lines.append(f"remainder at {r['at']}: {r['remainder']} (estimate "
                         f"{r['estimate']})")
        blocks.append("\n".join(lines))
    if "check" in result:
        blocks.append(_check(result["check"], coords))
    if "dependent" in result:
        y = result["dependent"]
        if "derivatives" in result:
            x = coords[0]
            blocks.append(_table(["", "value"], [[f"d{j if j > 1 else ''}{y}/d{x}"
                                                  f"{j if j > 1 else ''}", str(v)]
                                                 for j, v in enumerate(result["derivatives"],
                                                                       start=1)]))
    return blocks


def _check(check: dict[str, Any], coords: Sequence[str]) -> str:
    subject = check.get("claimed") or check
    g = subject["gradient"]
    rows = [[c, str(g["computed"][i]), str(g["finite_difference"][i]), str(g["error"][i]),
             "yes" if g["agree"][i] else "NO"] for i, c in enumerate(coords)] \
        if not isinstance(g["agree"][0], list) else []
    verdict = "agrees" if subject["agrees"] else "does NOT agree"
    who = "your gradient" if "claimed" in check else "nabla's gradient and Hessian"
    return f"check: {who} {verdict}\n" + _table(
        ["", "computed", "finite difference", "error", "agrees"], rows)
def _matrix_outputs(result: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A matrix-valued f with its outputs in one row-major list, named ``f[i,j]`` (non-finite
    entries are then shown as null)."""
    first = result.get("jacobian", result.get("value"))
    if "jacobian" not in result or not (isinstance(first, list) and first
                                        and isinstance(first[0], list)
                                        and first[0] and isinstance(first[0][0], list)):
        return result, []
    rows, cols = len(first), len(first[0])
    flat = dict(result)
    flat["nonfinite"] = []
    for key in ("value", "jacobian", "hessian"):
        if key in result:
            flat[key] = [entry for row in result[key] for entry in row]
    return flat, [f"f[{i},{j}]" for i in range(rows) for j in range(cols)]


def _output_names(result: dict[str, Any]) -> list[str]:
    first = result.get("value", result.get("jacobian", result.get("hessian", [])))
    return [f"f[{i}]" for i in range(len(first))]


def _matrix(label: str, rows: Sequence[str], cols: Sequence[str], data: Sequence[Any],
            cell: Any, prefix: tuple[int, ...]) -> str:
    field = label.split()[0]
    body = [[r, *(cell(field, (*prefix, i, j), x) for j, x in enumerate(row))]
            for i, (r, row) in enumerate(zip(rows, data, strict=True))]
    return _table([label, *cols], body)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[k])) for r in [header, *rows]) for k in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in [header, *rows]]
    return "\n".join(lines)
