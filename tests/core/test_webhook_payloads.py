"""The body receivers get and the address rules, as pure functions."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from ghl_core.shared.events import DomainEvent
from ghl_core.webhooks.addresses import UnsafeUrl, parse_url, refusal
from ghl_core.webhooks.event_types import public_type
from ghl_core.webhooks.payloads import camelize, event_data, webhook_body

LOCATION = uuid.uuid4()


def event(kind: str, payload: dict[str, object]) -> DomainEvent:
    return DomainEvent(
        type=kind,
        agency_id=uuid.uuid4(),
        location_id=LOCATION,
        entity_id=uuid.uuid4(),
        payload=payload,
        occurred_at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
    )


def test_opportunity_status_change_carries_the_opportunity_and_the_change() -> None:
    e = event(
        "opportunity.status_changed",
        {"opportunity": {"name": "Deal", "monetary_value": 100}, "from_status": "open", "to_status": "won"},
    )
    body = json.loads(webhook_body(e, public_type(e.type) or ""))
    assert body == {
        "type": "OpportunityStatusUpdate",
        "timestamp": "2026-03-01T12:00:00Z",
        "data": {
            "name": "Deal",
            "monetaryValue": 100,
            "changes": {"fromStatus": "open", "toStatus": "won"},
            "id": str(e.entity_id),
            "locationId": str(LOCATION),
        },
    }


def test_a_tag_change_keeps_the_contacts_tags_and_names_the_added_ones() -> None:
    e = event("contact.tag_added", {"contact": {"tags": ["a", "vip"]}, "tags": ["vip"]})
    data = event_data(e)
    assert data["tags"] == ["a", "vip"]
    assert data["changes"] == {"tags": ["vip"]}


def test_an_event_without_state_still_names_its_entity() -> None:
    data = event_data(event("contact.erased", {}))
    assert set(data) == {"id", "locationId"}


def test_camelize_nested_lists_and_verbatim_custom_fields() -> None:
    assert camelize({"dnd_channels": [{"google_business": 1}], "custom_fields": {"a_b": {"c_d": 1}}}) == {
        "dndChannels": [{"googleBusiness": 1}],
        "customFields": {"a_b": {"c_d": 1}},
    }


def test_public_names_map_to_themselves_and_unknown_types_to_nothing() -> None:
    assert public_type("ContactCreate") == "ContactCreate"
    assert public_type("contact.tag_removed") == "ContactTagUpdate"
    assert public_type("smart_list.created") is None


@pytest.mark.parametrize(
    ("address", "allowed_when_private_allowed"),
    [
        ("127.0.0.1", True),
        ("10.0.0.1", True),
        ("192.168.1.1", True),
        ("fe80::1", True),
        ("fd12::1", True),
        ("64:ff9b::7f00:1", True),  # NAT64 of 127.0.0.1
        ("169.254.169.254", False),
        ("fd00:ec2::254", False),
        ("224.0.0.1", False),
        ("::", False),
    ],
)
def test_non_public_addresses(address: str, allowed_when_private_allowed: bool) -> None:
    assert refusal(address) is not None
    assert (refusal(address, allow_private=True) is None) is allowed_when_private_allowed


def test_public_addresses_pass() -> None:
    assert refusal("93.184.216.34") is None
    assert refusal("2606:2800:220:1:248:1893:25c8:1946") is None


@pytest.mark.parametrize(
    "url",
    [
        "",
        "https://",
        "https://exa mple.com/",
        "https://example.com:99999/",
        "https://example.com/#frag",
        "x" * 3000,
    ],
)
def test_malformed_urls(url: str) -> None:
    with pytest.raises(UnsafeUrl):
        parse_url(url)


def test_url_parts_and_host_header() -> None:
    target = parse_url("https://Example.com./a?b=1")
    assert (target.host, target.port, target.path, target.host_header) == (
        "example.com",
        443,
        "/a?b=1",
        "example.com",
    )
    other = parse_url("http://[::1]:8080", allow_private=True)
    assert (other.path, other.host_header) == ("/", "[::1]:8080")
