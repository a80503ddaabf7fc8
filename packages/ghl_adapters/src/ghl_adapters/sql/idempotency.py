"""Idempotency keys kept in PostgreSQL, under the caller's tenant scope."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert

from ghl_core.shared.clock import Clock
from ghl_core.shared.idempotency import (
    IDEMPOTENCY_TTL,
    IdempotencyOutcome,
    IdempotencyState,
    StoredResponse,
)
from ghl_core.shared.scope import TenantScope

from . import tables as t
from .uow import SqlUnitOfWorkFactory


class SqlIdempotencyStore:
    def __init__(self, uow: SqlUnitOfWorkFactory, clock: Clock, ttl: timedelta = IDEMPOTENCY_TTL) -> None:
        self._uow = uow
        self._clock = clock
        self._ttl = ttl

    async def begin(
        self, scope: TenantScope, principal: str, key: str, fingerprint: str
    ) -> IdempotencyOutcome:
        now = self._clock.now()
        k = t.idempotency_keys.c
        async with self._uow(scope) as uow:
            conn = uow.connection
            # An expired key is forgotten, so it can be used again.
            await conn.execute(
                delete(t.idempotency_keys).where(k.principal == principal, k.key == key, k.expires_at <= now)
            )
            claimed = await conn.execute(
                insert(t.idempotency_keys)
                .values(
                    principal=principal,
                    key=key,
                    agency_id=scope.agency_id,
                    location_id=scope.location_id,
                    fingerprint=fingerprint,
                    state="started",
                    created_at=now,
                    expires_at=now + self._ttl,
                )
                .on_conflict_do_nothing(index_elements=["principal", "key"])
                # RETURNING, not rowcount: the driver reports -1 (truthy) for this INSERT, so every
                # request looked like the first and nothing was ever replayed.
                .returning(k.principal)
            )
            if claimed.first() is not None:
                await uow.commit()
                return IdempotencyOutcome(IdempotencyState.STARTED)
            row = (
                await conn.execute(select(t.idempotency_keys).where(k.principal == principal, k.key == key))
            ).first()
        if row is None:  # removed between our two statements: treat as a concurrent holder
            return IdempotencyOutcome(IdempotencyState.IN_PROGRESS)
        if row.fingerprint != fingerprint:
            return IdempotencyOutcome(IdempotencyState.MISMATCH)
        if row.state != "completed":
            return IdempotencyOutcome(IdempotencyState.IN_PROGRESS)
        return IdempotencyOutcome(
            IdempotencyState.REPLAY,
            StoredResponse(status=row.status, content_type=row.content_type, body=row.body),
        )

    async def complete(self, scope: TenantScope, principal: str, key: str, response: StoredResponse) -> None:
        k = t.idempotency_keys.c
        async with self._uow(scope) as uow:
            await uow.connection.execute(
                update(t.idempotency_keys)
                .where(k.principal == principal, k.key == key)
                .values(
                    state="completed",
                    status=response.status,
                    content_type=response.content_type,
                    body=response.body,
                )
            )
            await uow.commit()

    async def abandon(self, scope: TenantScope, principal: str, key: str) -> None:
        k = t.idempotency_keys.c
        async with self._uow(scope) as uow:
            await uow.connection.execute(
                delete(t.idempotency_keys).where(k.principal == principal, k.key == key, k.state == "started")
            )
            await uow.commit()
