"""Helpers shared by the command handlers."""
from __future__ import annotations

import argparse
from typing import Sequence

from ..errors import KdrestoreError


def benchmark_root(args: argparse.Namespace) -> str:
    """``--data``, else ``$KDRESTORE_DATA``: the benchmark data root."""
    import os

    data = args.data or os.environ.get("KDRESTORE_DATA")
    if not data:
        raise KdrestoreError("give --data (the benchmark data root) or set KDRESTORE_DATA")
    return data


def parse_key_value(text: str) -> tuple[str, object]:
    """``key=value`` with the value read as a YAML scalar/list (never evaluated as code)."""
    import yaml

    if "=" not in text:
        raise KdrestoreError(f"expected key=value, got {text!r}")
    key, value = text.split("=", 1)
    return key.strip(), yaml.safe_load(value)


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    print(line(header))
    print(line("-" * w for w in widths))
    for row in rows:
        print(line(row))
