"""Split tests: the percentages of a split step's paths, and the deterministic bucket a contact falls in
(the same in the engine, the simulator and every release)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from ghl_core.shared.errors import FieldError, ValidationFailed

MIN_PATHS, MAX_PATHS = 2, 10


def parse_split(raw: Any, pointer: str) -> list[int]:
    """Split-test percentages, one per path: 2 to 10 whole numbers, each at least 1, summing to 100.
    Accepts `[50, 50]` or paths as objects `[{"percent": 50, ...}, ...]` (other members are the caller's)."""
    if not isinstance(raw, list) or not MIN_PATHS <= len(raw) <= MAX_PATHS:
        raise ValidationFailed.one(pointer, f"must be a list of {MIN_PATHS} to {MAX_PATHS} paths")
    errors: list[FieldError] = []
    percentages: list[int] = []
    for i, item in enumerate(raw):
        here = f"{pointer}/{i}"
        if isinstance(item, Mapping):
            here, item = f"{here}/percent", item.get("percent")
        if not isinstance(item, int) or isinstance(item, bool) or not 1 <= item <= 100:
            errors.append(FieldError(here, "must be a whole percentage from 1 to 100"))
            continue
        percentages.append(item)
    if not errors and sum(percentages) != 100:
        errors.append(FieldError(pointer, f"percentages must add up to 100, not {sum(percentages)}"))
    if errors:
        raise ValidationFailed(errors)
    return percentages


def split_bucket(key: str, percentages: Sequence[int]) -> int:
    """The path index for `key`, the same in every process and release: sha256 of the key picks a point in
    0..9999 basis points, which falls in one path's cumulative share. Callers key by workflow, step and
    contact so one contact lands on the same path every time but independently across split steps."""
    if sum(percentages) != 100 or any(p < 0 for p in percentages):
        raise ValueError(f"percentages must be non-negative and add up to 100: {list(percentages)}")
    point = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % 10_000
    edge = 0
    for index, percent in enumerate(percentages):
        edge += percent * 100
        if point < edge:
            return index
    raise AssertionError("unreachable: the shares cover 0..9999")  # pragma: no cover
