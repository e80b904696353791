"""``make bench``: run every ``benchmarks/bench_*.py`` and print one table.

Each module's ``run(quick=False)`` returns rows ``{"benchmark", "value",
"unit", "goal", "note"}``. ``--quick`` runs each briefly (a smoke test);
``--only NAME`` runs the modules whose name contains NAME.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
from pathlib import Path


def modules(only: str | None) -> list[str]:
    """The benchmark modules, in name order."""
    names = sorted(info.name for info in pkgutil.iter_modules([str(Path(__file__).parent)])
                   if info.name.startswith("bench_"))
    return [name for name in names if only is None or only in name]


def table(rows: list[dict]) -> str:
    """Rows as a Markdown table (the same text goes into benchmarks/README.md)."""
    header = ["benchmark", "value", "unit", "goal", "note"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        value = row.get("value")
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        lines.append("| " + " | ".join([str(row.get("benchmark", "")), shown, str(row.get("unit", "")),
                                          str(row.get("goal", "")), str(row.get("note", ""))]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs, for a smoke test")
    parser.add_argument("--only", help="run only modules whose name contains this")
    args = parser.parse_args(argv)
    rows: list[dict] = []
    failed = []
    for name in modules(args.only):
        started = time.perf_counter()
        print(f"running {name} ...", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            rows.extend(module.run(quick=args.quick))
        except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others
            failed.append(name)
            rows.append({"benchmark": name, "value": "failed", "unit": "", "goal": "", "note": repr(exc)[:120]})
        print(f"  {name}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    print(table(rows))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
