"""Trigger types: what each trigger of a definition reads from the document and which occurrences it
accepts. `TRIGGER_TYPES` maps a type to its class and the reader of its own members (`type` and `filters`
are common); the class's `accepts` matches its parameters against an occurrence's data. A new context
(appointments, forms, payments) adds its triggers here, a line or two each, and the reader of its domain
events in workflows/triggers.py."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import time
from typing import Any

from ghl_core.contacts.fields import KNOWN_FIELDS, MAX_TAG, normalize_tag
from ghl_core.shared.errors import FieldError
from ghl_core.workflows.reading import FIELD_HINT, Reader, is_contact_field
from ghl_core.workflows.steps.contact import DND_CHANNELS
from ghl_core.workflows.steps.opportunities import STATUSES
from ghl_core.workflows.values import Trigger, ref

CHANNELS = ("sms", "email")
MAX_REMINDER_DAYS = 365


@dataclass(frozen=True, kw_only=True)
class ContactChangedTrigger(Trigger):
    fields: tuple[str, ...] = ()  # empty: any field

    def accepts(self, data: Mapping[str, Any]) -> bool:
        return not self.fields or bool(set(self.fields) & set(data.get("fields", ())))


@dataclass(frozen=True, kw_only=True)
class TagTrigger(Trigger):
    tag: str | None = None  # None: any tag

    def accepts(self, data: Mapping[str, Any]) -> bool:
        return self.tag is None or self.tag.casefold() == str(data.get("tag", "")).casefold()


@dataclass(frozen=True, kw_only=True)
class ChannelTrigger(Trigger):
    channel: str | None = None  # None: any channel

    def accepts(self, data: Mapping[str, Any]) -> bool:
        if self.channel is None:
            return True
        if self.type == "dnd_changed":
            return self.channel in data.get("channels", ())
        return self.channel == data.get("channel")


@dataclass(frozen=True, kw_only=True)
class OpportunityTrigger(Trigger):
    pipeline_id: uuid.UUID | None = field(default=None, metadata=ref("pipeline"))
    stage_id: uuid.UUID | None = field(default=None, metadata=ref("stage", within="pipeline_id"))
    status: str | None = None

    def accepts(self, data: Mapping[str, Any]) -> bool:
        return (
            (self.pipeline_id is None or str(self.pipeline_id) == data.get("pipeline_id"))
            and (self.stage_id is None or str(self.stage_id) == data.get("stage_id"))
            and (self.status is None or self.status == data.get("status"))
        )


@dataclass(frozen=True, kw_only=True)
class ReminderTrigger(Trigger):
    """Fires once a year (birthday) or once (custom date) at `at` local time, offset by whole days. Not
    fired by an event: the engine's periodic `remind` enrolls the contacts whose date has come."""

    at: time
    field: str | None = dataclasses.field(default=None, metadata=ref("date_custom_field"))  # `custom.KEY`
    days_before: int = 0
    days_after: int = 0


def _read_tag(r: Reader) -> dict[str, Any]:
    value = r.get("tag")
    if value is None:
        return {}
    tag = normalize_tag(value) if isinstance(value, str) else ""
    if not tag or len(tag) > MAX_TAG or not tag.isprintable():
        r.fail("tag", f"must be a tag name of at most {MAX_TAG} characters")
        return {}
    return {"tag": tag}


def _read_channel(options: tuple[str, ...]) -> Callable[[Reader], dict[str, Any]]:
    return lambda r: {"channel": r.optional_choice("channel", options)}


def _read_contact_changed(r: Reader) -> dict[str, Any]:
    names = r.get("fields")
    if names is None:
        return {}
    if not isinstance(names, list) or not names:
        r.fail("fields", "must be a non-empty list of contact fields")
        return {}
    out: list[str] = []
    for i, name in enumerate(names):
        if not is_contact_field(name, KNOWN_FIELDS):
            r.errors.append(FieldError(f"{r.at('fields')}/{i}", FIELD_HINT))
        elif name not in out:
            out.append(name)
    return {"fields": tuple(out)}


def _read_opportunity(r: Reader, *, status: bool = False, stage: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"pipeline_id": r.uuid("pipeline_id", required=False)}
    if stage:
        out["stage_id"] = r.uuid("stage_id", required=False)
        if out["stage_id"] is not None and out["pipeline_id"] is None and not r.failed:
            r.fail("pipeline_id", "is required with stage_id")
    if status:
        out["status"] = r.optional_choice("status", STATUSES)
    return out


def _read_reminder(r: Reader, *, custom: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "at": r.clock("at"),
        "days_before": r.integer("days_before", 0, MAX_REMINDER_DAYS, default=0),
        "days_after": r.integer("days_after", 0, MAX_REMINDER_DAYS, default=0),
    }
    if out["days_before"] and out["days_after"]:
        r.fail("days_after", "give days_before or days_after, not both")
    if custom:
        value = r.get("field")
        if not is_contact_field(value, frozenset()):
            r.fail("field", "must name a date custom field as custom.KEY")
        out["field"] = value
    return out


def _none(r: Reader) -> dict[str, Any]:
    return {}


# Each trigger type: its class and the reader of its own members.
TRIGGER_TYPES: dict[str, tuple[type[Trigger], Callable[[Reader], dict[str, Any]]]] = {
    "contact_created": (Trigger, _none),
    "contact_changed": (ContactChangedTrigger, _read_contact_changed),
    "tag_added": (TagTrigger, _read_tag),
    "tag_removed": (TagTrigger, _read_tag),
    "dnd_changed": (ChannelTrigger, _read_channel(DND_CHANNELS)),
    "note_added": (Trigger, _none),
    "task_added": (Trigger, _none),
    "task_completed": (Trigger, _none),
    "customer_replied": (ChannelTrigger, _read_channel(CHANNELS)),
    "opportunity_created": (OpportunityTrigger, lambda r: _read_opportunity(r, status=False, stage=True)),
    "pipeline_stage_changed": (OpportunityTrigger, lambda r: _read_opportunity(r, status=False, stage=True)),
    "opportunity_status_changed": (
        OpportunityTrigger,
        lambda r: _read_opportunity(r, status=True, stage=False),
    ),
    "birthday_reminder": (ReminderTrigger, lambda r: _read_reminder(r, custom=False)),
    "custom_date_reminder": (ReminderTrigger, lambda r: _read_reminder(r, custom=True)),
    "inbound_webhook": (Trigger, _none),
    "manual": (Trigger, _none),
}
