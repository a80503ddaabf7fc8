"""Running and inspecting the Alembic migrations (`ghl db upgrade`, `ghl db status`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from .engines import async_url

MIGRATIONS = Path(__file__).parent / "migrations"


def _sync_url(url: str) -> str:
    return async_url(url).render_as_string(hide_password=False)


def _config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", _sync_url(url).replace("%", "%%"))
    return cfg


@dataclass(frozen=True)
class MigrationStatus:
    current: str | None
    head: str  # the heads, comma-separated when several branches are open
    pending: list[str]

    @property
    def up_to_date(self) -> bool:
        return not self.pending


def upgrade(url: str, revision: str = "heads") -> MigrationStatus:
    command.upgrade(_config(url), revision)
    return status(url)


def status(url: str) -> MigrationStatus:
    cfg = _config(url)
    script = ScriptDirectory.from_config(cfg)
    heads = tuple(script.get_heads())
    engine = create_engine(_sync_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            applied = MigrationContext.configure(conn).get_current_heads()
    finally:
        engine.dispose()
    done = {rev.revision for rev in script.iterate_revisions(applied, "base")} if applied else set()
    pending = [rev.revision for rev in script.iterate_revisions(heads, "base") if rev.revision not in done]
    return MigrationStatus(
        current=",".join(sorted(applied)) or None,
        head=",".join(sorted(heads)),
        pending=list(reversed(pending)),
    )
