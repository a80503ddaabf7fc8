"""procrastinate's job states, by name: what `ghl jobs list --status` offers in its help, which must
not import the job engine to say so."""

from __future__ import annotations

STATUSES = ("todo", "doing", "succeeded", "failed", "cancelled", "aborting", "aborted")
