"""The transaction every unit of work is: one tenant scope, committed explicitly, rolled back otherwise.

`shared/` knows no context, so it declares only the base. Each context declares, in its own `ports.py`,
the narrow unit of work it needs (a protocol deriving from `Transaction` that lists just the repositories
its services touch), and its services take a `UnitOfWorkFactory[ThatProtocol]`. The SQL and in-memory
units of work hold every repository, so they satisfy all of those protocols at once: a workflow step and
a contact change can still share one transaction.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self, TypeVar

from ghl_core.shared.scope import TenantScope


class Transaction(Protocol):
    """One transaction in one tenant scope. Leaving it without `commit()` rolls back."""

    scope: TenantScope

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Rolls back whatever was not committed."""
        ...

    async def commit(self) -> None: ...


U_co = TypeVar("U_co", bound=Transaction, covariant=True)


class UnitOfWorkFactory(Protocol[U_co]):
    """Opens a unit of work of the kind `U_co` for one tenant scope."""

    def __call__(self, scope: TenantScope) -> U_co: ...
