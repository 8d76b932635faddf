"""``python -m bench [--only ROW ...] [--quick] [--json FILE] [--seed N]``.

Runs each row against its baseline in the same run and prints the table. One row's
failure is reported in its line and the run goes on; every server is stopped at the end.
"""

from __future__ import annotations

import argparse
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from bench import machine, orders, report, rows
from bench.core import Bench, Plan, Row
from bench.isolation import isolation

ROWS: dict[str, Callable[[Bench], Row]] = {
    "warm": rows.warm,
    "warm_computed": rows.warm_computed,
    "cold": rows.cold,
    "cold_symbolic": rows.cold_symbolic,
    "cold_symengine": rows.cold_symengine,
    "scale": rows.scale,
    "scale_symengine": rows.scale_symengine,
    "restart": rows.restart,
    "vectorised": rows.vectorised,
    "speculation": rows.speculation,
    "batch": rows.batch,
    "transport": rows.transport,
    "tensor4": orders.tensor4,
    "taylor10": orders.taylor10,
    "memory": lambda bench: rows.memory(bench, bench.memo.get("rows_run", [])),
    "isolation": isolation,
    "matrix": rows.matrix,  # after memory: its RSS is of the issue-4 rows alone
}


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="nabla's benchmarks against baselines, in one run")
    parser.add_argument("--only", action="append", choices=list(ROWS), metavar="ROW",
                        help=f"run only this row (repeatable): {', '.join(ROWS)}")
    parser.add_argument("--quick", action="store_true", help="shorter, smaller runs")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also save results as JSON")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the cold expressions (default: from the clock, so "
                        "they are new even to a persistent compilation cache)")
    return parser.parse_args(argv)


def _run_row(bench: Bench, key: str) -> Row:
    started = time.perf_counter()
    print(f"... {key}", flush=True)
    try:
        row = ROWS[key](bench)
    except Exception as error:  # one failing row must not stop the table
        traceback.print_exc()
        row = Row(key, key, "-", error=f"{type(error).__name__}: {error}"[:500])
    if key == "memory":
        bench.close()  # the rows after memory use their own server
    bench.memo.setdefault("rows_run", []).append(key)
    print(f"    {key} done in {time.perf_counter() - started:.1f} s: {row.nabla} vs "
          f"{row.baseline}", flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    """Run the chosen rows; print the machine, the table and the notes."""
    args = _arguments(argv)
    seed = args.seed if args.seed is not None else int(time.time()) % 100_000
    plan = Plan.make(args.quick, seed)
    facts = machine.describe()
    print(machine.line(facts), flush=True)
    chosen = [key for key in ROWS if not args.only or key in args.only]
    bench = Bench(plan)
    results: list[Row] = []
    try:
        for key in chosen:
            results.append(_run_row(bench, key))
    finally:
        bench.close()
    print()
    print(machine.line(facts) + (" — QUICK run" if plan.quick else ""))
    print()
    print(report.table(results))
    print()
    print(report.notes(results))
    if args.json is not None:
        report.save(args.json, facts, asdict(plan), results)
    return 0 if all(row.error is None for row in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
