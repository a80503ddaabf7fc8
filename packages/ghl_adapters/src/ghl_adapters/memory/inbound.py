"""The in-memory repositories of inbound webhooks: a location's endpoints and the raw events received.

Decisions:
- An event is stored once per (provider, scope, provider_event_id) across every location, as the SQL
  unique constraint: a second `add` stores nothing and answers False, whoever's scope it runs in.
- `lookup` answers before the tenant is known, like the SQL SECURITY DEFINER function: it reads the
  endpoint whatever the scope and asks the unit of work (`location_facts`) whether its location and
  agency are live.
- A listed event comes without its body and headers, with `body_size` set, as the SQL listing.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from ghl_core.inbound.models import EndpointKey, EventStatus, InboundEndpoint, InboundEvent
from ghl_core.shared.pagination import Page, PageRequest

from .rows import check_write, clone, keyset_page, location_facts, unique_rows
from .store import MemoryRepository, Table

ENDPOINTS: Table[uuid.UUID, InboundEndpoint] = Table("inbound_endpoints")
EVENTS: Table[uuid.UUID, InboundEvent] = Table("inbound_events")


class MemoryInboundEndpointRepository(MemoryRepository):
    @property
    def _endpoints(self) -> dict[uuid.UUID, InboundEndpoint]:
        return self.rows(ENDPOINTS)

    async def add(self, endpoint: InboundEndpoint) -> None:
        check_write(self.scope, endpoint.location_id, "inbound_endpoints")
        if endpoint.id in self._endpoints:
            raise KeyError(f"inbound endpoint {endpoint.id} exists")
        self._endpoints[endpoint.id] = clone(endpoint)

    async def get(self, endpoint_id: uuid.UUID) -> InboundEndpoint | None:
        found = self._endpoints.get(endpoint_id)
        return clone(found) if found is not None and self.sees_location(found.location_id) else None

    async def update(self, endpoint: InboundEndpoint) -> None:
        stored = self._endpoints.get(endpoint.id)
        if stored is None or not self.sees_location(stored.location_id):
            return
        self._endpoints[endpoint.id] = replace(clone(endpoint), location_id=stored.location_id)

    async def list(self, location_id: uuid.UUID, page: PageRequest) -> Page[InboundEndpoint]:
        rows = [
            e
            for e in self._endpoints.values()
            if e.location_id == location_id and e.deleted_at is None and self.sees_location(e.location_id)
        ]
        return keyset_page(rows, page, lambda e: e.created_at, descending=False)

    async def lookup(self, endpoint_id: uuid.UUID) -> EndpointKey | None:
        found = self._endpoints.get(endpoint_id)
        if found is None or found.deleted_at is not None:
            return None
        facts = location_facts(self, found.location_id)
        if facts is None:
            return None
        _, live = facts
        return EndpointKey(
            endpoint_id=endpoint_id,
            location_id=found.location_id,
            secret_ciphertext=found.secret_ciphertext,
            active=found.enabled and live,
        )


class MemoryInboundEventRepository(MemoryRepository):
    @property
    def _events(self) -> dict[uuid.UUID, InboundEvent]:
        return self.rows(EVENTS)

    async def add(self, event: InboundEvent) -> bool:
        check_write(self.scope, event.location_id, "inbound_events")
        key = (event.provider, event.scope, event.provider_event_id)
        if event.id in self._events or any(
            (e.provider, e.scope, e.provider_event_id) == key for e in unique_rows(self, EVENTS)
        ):
            return False
        self._events[event.id] = replace(clone(event), body_size=-1)
        return True

    async def find(self, provider: str, scope: str, provider_event_id: str) -> InboundEvent | None:
        for e in self._events.values():
            if (e.provider, e.scope, e.provider_event_id) == (provider, scope, provider_event_id):
                return clone(e) if self.sees_location(e.location_id) else None
        return None

    async def get(self, event_id: uuid.UUID, *, lock: bool = False) -> InboundEvent | None:
        found = self._events.get(event_id)
        return clone(found) if found is not None and self.sees_location(found.location_id) else None

    async def update(self, event: InboundEvent) -> None:
        stored = self._events.get(event.id)
        if stored is None or not self.sees_location(stored.location_id):
            return
        self._events[event.id] = replace(
            stored,
            status=event.status,
            attempts=event.attempts,
            last_error=event.last_error,
            processed_at=event.processed_at,
        )

    async def list(
        self,
        location_id: uuid.UUID,
        page: PageRequest,
        endpoint_id: uuid.UUID | None = None,
        status: EventStatus | None = None,
    ) -> Page[InboundEvent]:
        rows = [
            replace(e, headers={}, body=b"", body_size=len(e.body))
            for e in self._events.values()
            if e.location_id == location_id
            and self.sees_location(e.location_id)
            and (endpoint_id is None or e.endpoint_id == endpoint_id)
            and (status is None or e.status is status)
        ]
        return keyset_page(rows, page, lambda e: e.received_at, descending=True)
