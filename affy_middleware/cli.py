"""The ``affy`` command."""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    print("affy: coming soon", file=sys.stderr)
    return 0
