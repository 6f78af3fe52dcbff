"""Cutting a list into fixed-size pieces: bounds the bound parameters of one statement or
lookup (an `IN (...)` list) whatever the number of items."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """`items` in order, `size` at a time (the last piece may be shorter)."""
    return [items[i : i + size] for i in range(0, len(items), size)]
