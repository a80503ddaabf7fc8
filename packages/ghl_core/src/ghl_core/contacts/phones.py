"""Phone normalisation lives on the floor (`ghl_core.shared.phones`): custom field values need it too,
and they sit below contacts. This name stays only for modules not yet moved to the shared one."""

from __future__ import annotations

from ghl_core.shared.phones import normalize_phone, quick_phone_key

__all__ = ["normalize_phone", "quick_phone_key"]
