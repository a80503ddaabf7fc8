"""Which errors mean "the database cannot be reached" (503, retry) rather than "a statement failed" (500).
The outage itself is tested end to end in tests/http/test_ops.py; these are the kinds it cannot stage."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors as pg
from sqlalchemy import exc as sa

from ghl_adapters.sql.availability import database_unavailable


def wrapped(orig: Exception, *, invalidated: bool = False) -> sa.DBAPIError:
    error = sa.DBAPIError.instance("SELECT 1", {}, orig, psycopg.Error, connection_invalidated=invalidated)
    assert isinstance(error, sa.DBAPIError)
    return error


@pytest.mark.parametrize(
    "error",
    [
        wrapped(psycopg.OperationalError("connection failed: Connection refused")),  # no SQLSTATE
        wrapped(pg.AdminShutdown()),  # 57P01: the server is shutting down
        wrapped(pg.CannotConnectNow()),  # 57P03: the server is starting up
        wrapped(pg.TooManyConnections()),  # 53300
        wrapped(pg.ConnectionFailure()),  # class 08
        wrapped(psycopg.OperationalError("server closed the connection"), invalidated=True),
        sa.TimeoutError("QueuePool limit of size 10 overflow 10 reached, connection timed out"),
    ],
    ids=["refused", "shutdown", "starting", "too-many", "class-08", "invalidated", "pool-timeout"],
)
def test_the_database_out_of_reach_is_unavailable(error: Exception) -> None:
    assert database_unavailable(error)


def test_a_wrapper_around_an_outage_is_still_an_outage() -> None:
    outer = RuntimeError("the job queue could not enqueue")
    outer.__cause__ = wrapped(pg.AdminShutdown())

    assert database_unavailable(outer)


@pytest.mark.parametrize(
    "error",
    [
        wrapped(pg.DeadlockDetected()),  # an OperationalError, but the database answered
        wrapped(pg.QueryCanceled()),
        wrapped(pg.UniqueViolation()),
        wrapped(pg.NumericValueOutOfRange()),
        ValueError("not a database error"),
    ],
    ids=["deadlock", "statement-timeout", "unique", "out-of-range", "other"],
)
def test_a_statement_that_failed_on_a_reachable_database_is_not(error: Exception) -> None:
    assert not database_unavailable(error)
