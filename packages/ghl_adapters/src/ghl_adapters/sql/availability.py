"""Telling "the database cannot be reached" from "a statement failed".

While PostgreSQL is down, restarting or refusing connections, every request fails the same way and none
is the caller's fault: the shells answer 503 with Retry-After (and log one warning line, no traceback)
instead of 500. A statement that failed on a reachable database (a constraint, a deadlock, a timeout) is
not an outage and is left to the usual handling.

Counted as unreachable: the pool waiting in vain for a connection; a connection the driver lost (it has
no SQLSTATE, or SQLAlchemy invalidated it); SQLSTATE class 08 (connection exception); the server shutting
down or starting up (57P01-57P03); and too many connections (53300)."""

from __future__ import annotations

import psycopg
from sqlalchemy import exc as sa_exc

RETRY_AFTER_SECONDS = 5
_UNREACHABLE_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})
_CHAIN_LIMIT = 8  # causes followed: drivers and job libraries wrap the error once or twice


def _unreachable(error: BaseException) -> bool:
    if isinstance(error, sa_exc.TimeoutError):  # QueuePool: no connection came back in time
        return True
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, psycopg.OperationalError):
        state = error.sqlstate
        return state is None or state.startswith("08") or state in _UNREACHABLE_STATES
    return False


def database_unavailable(error: BaseException) -> bool:
    """Whether `error`, or what it wraps, says the database cannot be reached right now."""
    seen: BaseException | None = error
    for _ in range(_CHAIN_LIMIT):
        if seen is None:
            return False
        if _unreachable(seen):
            return True
        wrapped = seen.orig if isinstance(seen, sa_exc.DBAPIError) else None
        seen = wrapped if isinstance(wrapped, BaseException) else seen.__cause__ or seen.__context__
    return False
