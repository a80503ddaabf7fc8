"""The embedding example runs as shipped, with no database, and the in-memory adapter set imports neither
SQLAlchemy nor Redis (an embedder installs neither to use it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "embed_core.py"

PROBE = f"""
import asyncio, json, runpy, sys
example = runpy.run_path({str(EXAMPLE)!r}, run_name="embed_example")
summary = asyncio.run(example["main"]())
print(json.dumps({{
    "summary": summary,
    "loaded": sorted(m for m in ("sqlalchemy", "redis", "psycopg", "procrastinate") if m in sys.modules),
}}))
"""


def test_the_example_embeds_the_core_without_a_database() -> None:
    done = subprocess.run(  # noqa: S603 - our own interpreter and example
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["loaded"] == []
    summary = result["summary"]
    assert summary["location"] == "Example Dental"
    assert sorted(summary["contacts"]) == ["Ann", "Bob", "Cid"]
    assert summary["tagged"] == 2
    assert summary["finished"] == "completed"
    assert summary["simulation"][:2] == ["hello", "pause"]
    # The published workflow greeted the contact created after it: event, enrolment, step, send.
    assert summary["outbox"] == ["Hi Cid, welcome!", "See you soon"]
    assert summary["failed_jobs"] == []
