"""What a job's failure says, and to whom.

A location admin reads a job's last error (`GET /api/v1/jobs/failed`) and the reason a workflow enrollment
failed. Raw exception text does not belong there: a database driver's error carries its SQL and
parameters, a provider library's the addresses it tried, a bug its internals. So:

- the location admin sees a domain error's own message (written for tenants: the API answers the same
  for the same cause) or, for any other exception, one generic sentence; both end with the error id;
- the full text goes to the log (with the traceback) under that error id, and to the job's error row
  where only operators read it (`ghl jobs show`);
- the error id is the job's id and attempt (`1234-3`, `JobContext.error_id`): the same on every record
  of one failure, whoever writes it, and enough for an operator to find the job and its log line.
"""

from __future__ import annotations

from ghl_core.shared.errors import DomainError

MAX_ERROR = 4000  # characters kept of either text


def public_error(exc: BaseException, error_id: str) -> str:
    """What the location admin may read about the failure."""
    if isinstance(exc, DomainError):
        said = exc.detail if exc.detail.startswith(exc.title) else f"{exc.title}: {exc.detail}"
        return f"{said[: MAX_ERROR - 40]} (error id {error_id})"
    return f"the job stopped on an internal error (error id {error_id}); your operator has the detail"


def error_detail(exc: BaseException) -> str:
    """The whole story, for operators and the log only."""
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
