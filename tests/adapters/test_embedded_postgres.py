"""The embedded PostgreSQL server: shared between processes, persistent across restarts.

Each test runs initdb and starts a real server (about a second each), so there are only a few.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from ghl_adapters.sql.embedded import EmbeddedPostgres, EmbeddedPostgresError

pytestmark = pytest.mark.slow

_JOIN_AND_READ = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import psycopg
    from ghl_adapters.sql.embedded import EmbeddedPostgres

    pg = EmbeddedPostgres.start(Path(sys.argv[1]))
    with psycopg.connect(pg.libpq_url) as conn:
        rows = conn.execute("SELECT name FROM notes ORDER BY name").fetchall()
    print(json.dumps({"pid": pg.pid, "rows": [r[0] for r in rows]}))
    pg.stop()
    """
)


def _join_from_another_process(data_dir: Path) -> dict[str, object]:
    done = subprocess.run(  # noqa: S603 -- our own interpreter running our own snippet
        [sys.executable, "-c", _JOIN_AND_READ, str(data_dir)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_a_second_process_shares_the_running_server(tmp_path: Path) -> None:
    pg = EmbeddedPostgres.start_temporary(tmp_path)
    try:
        with psycopg.connect(pg.libpq_url) as conn:
            conn.execute("CREATE TABLE notes (name text PRIMARY KEY)")
            conn.execute("INSERT INTO notes VALUES ('first'), ('second')")

        seen = _join_from_another_process(pg.data_dir)

        assert seen == {"pid": pg.pid, "rows": ["first", "second"]}
        # The other process let go of its handle; ours still holds the server up.
        assert (pg.pgdata / "postmaster.pid").exists()
        engine = sa.create_engine(pg.url)
        try:
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT current_database()")).scalar_one() == "ghl"
                assert conn.execute(sa.text("SELECT count(*) FROM notes")).scalar_one() == 2
        finally:
            engine.dispose()
    finally:
        pg.stop()

    assert not pg.data_dir.exists(), "a temporary server deletes its folder when it stops"


def test_data_survives_a_restart_even_with_a_long_data_path(tmp_path: Path) -> None:
    # Longer than a unix socket path may be, so the socket must live somewhere shorter.
    data_dir = tmp_path / ("d" * 60) / ("e" * 60)
    first = EmbeddedPostgres.start(data_dir, database="crm")
    try:
        assert first.socket_dir is not None
        assert len(str(first.socket_dir / ".s.PGSQL.5432")) < 108
        assert first.url.startswith("postgresql+psycopg://postgres@/crm?host=")
        assert first.admin_url.startswith("postgresql+psycopg://postgres@/postgres?host=")
        with psycopg.connect(first.libpq_url) as conn:
            conn.execute("CREATE TABLE notes (name text)")
            conn.execute("INSERT INTO notes VALUES ('kept')")
    finally:
        first.stop()
    first.stop()  # a second stop is harmless

    assert not (data_dir / "pgdata" / "postmaster.pid").exists(), "the last handle stops the server"

    with EmbeddedPostgres.start(data_dir, database="crm") as again:
        assert again.pid != first.pid
        with psycopg.connect(again.libpq_url) as conn:
            assert conn.execute("SELECT name FROM notes").fetchall() == [("kept",)]
    assert again.stopped
    assert data_dir.exists(), "a named data folder is never deleted"


def test_a_server_that_cannot_start_raises_with_its_log(tmp_path: Path) -> None:
    EmbeddedPostgres.start(tmp_path).stop()
    with (tmp_path / "pgdata" / "postgresql.conf").open("a") as conf:
        conf.write("\nshared_buffers = 'not a size'\n")

    with pytest.raises(EmbeddedPostgresError) as caught:
        EmbeddedPostgres.start(tmp_path)

    message = str(caught.value)
    assert str(tmp_path / "pgdata") in message
    assert "shared_buffers" in message


def test_database_names_must_be_plain_identifiers(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="plain identifier"):
        EmbeddedPostgres.start(tmp_path, database="crm; DROP DATABASE postgres")
    assert not (tmp_path / "pgdata").exists()
