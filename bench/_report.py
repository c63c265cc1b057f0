"""The benchmarks' common command line (``--quick``, ``--json``, ``--rounds``, ``--store``) and
their verdict lines (``  target NAME: FIGURE ok|MISSED``)."""

from __future__ import annotations

import argparse

__all__ = ["bench_parser", "target"]


def bench_parser(
    doc: str | None, quick: str, *, rounds: bool = True, store: str | None = None
) -> argparse.ArgumentParser:
    """A parser described by ``doc``'s first line with ``--quick`` (help ``quick``), ``--json``,
    ``--rounds`` (unless not ``rounds``) and, given its help, ``--store`` with
    ``--database-url``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    if rounds:
        parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3, quick 1)")
    if store is not None:
        parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite", help=store)
        parser.add_argument("--database-url", help="a PostgreSQL server to create databases on")
    return parser


def target(name: str, figure: str, ok: bool) -> None:
    """Print a target's verdict: its figure and bound, then ok or MISSED."""
    print(f"  target {name}: {figure} {'ok' if ok else 'MISSED'}")
