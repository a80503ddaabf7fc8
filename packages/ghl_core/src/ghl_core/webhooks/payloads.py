"""The body a receiver gets: `{"type", "timestamp", "data"}`, data in the camelCase GoHighLevel
integrators expect."""

from __future__ import annotations

import base64
import json
import re
import secrets
from typing import Any

from ghl_core.shared.events import DomainEvent

SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
SECRET_BYTES = 32
# Keys whose values are named by the location (custom field keys): kept as written.
_VERBATIM = frozenset({"custom_fields", "customFields"})
# What a domain event payload carries the entity's state under.
_ENTITY_KEYS = ("after", "contact", "opportunity")
_WORD = re.compile(r"_([a-z0-9])")


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def camel(key: str) -> str:
    return _WORD.sub(lambda m: m.group(1).upper(), key)


def camelize(value: Any) -> Any:
    if isinstance(value, dict):
        return {camel(str(k)): (v if k in _VERBATIM else camelize(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [camelize(v) for v in value]
    return value


def event_data(event: DomainEvent) -> dict[str, Any]:
    """The entity's state after the change (before it, for a change that left nothing), the details of
    the change under `changes`, and `id`/`locationId`."""
    payload = event.payload or {}
    state: dict[str, Any] | None = None
    for key in _ENTITY_KEYS:
        if isinstance(payload.get(key), dict):
            state = payload[key]
            break
    if state is None and isinstance(payload.get("before"), dict):
        state = payload["before"]
    details = {k: v for k, v in payload.items() if k not in {"before", "after", *_ENTITY_KEYS}}
    data: dict[str, Any] = camelize(dict(state or {}))
    if details:
        data["changes"] = camelize(details)
    data["id"] = str(event.entity_id)
    data["locationId"] = str(event.location_id) if event.location_id else None
    return data


def webhook_body(event: DomainEvent, public_type: str) -> str:
    """The exact text signed and sent: compact JSON, the same bytes on every attempt."""
    doc = {
        "type": public_type,
        "timestamp": event.occurred_at.isoformat().replace("+00:00", "Z"),
        "data": event_data(event),
    }
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False, default=str)
