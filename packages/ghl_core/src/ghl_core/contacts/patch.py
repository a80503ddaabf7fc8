"""A typed change to a contact, for what the core changes in itself (a workflow step): the members a
patch may set, and the custom field values. Tags have their own service; identity, dates kept by the
system and erasure are not a patch's.

A member left `UNSET` stays as it is; None clears it. The values still pass the contact service's checks
(`clean_contact_fields`, the custom field definitions, the assignee rule): a workflow's values may come
from a rendered template, so they are no more trusted than the API's."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from typing import Any, Final, Literal


class _Unset(Enum):
    UNSET = "unset"


UNSET: Final = _Unset.UNSET
Unset = Literal[_Unset.UNSET]
CUSTOM_PREFIX = "custom."


@dataclass(frozen=True, kw_only=True, slots=True)
class ContactPatch:
    first_name: str | Unset | None = UNSET
    last_name: str | Unset | None = UNSET
    company_name: str | Unset | None = UNSET
    address1: str | Unset | None = UNSET
    city: str | Unset | None = UNSET
    state: str | Unset | None = UNSET
    postal_code: str | Unset | None = UNSET
    country: str | Unset | None = UNSET
    website: str | Unset | None = UNSET
    source: str | Unset | None = UNSET
    gender: str | Unset | None = UNSET
    email: str | Unset | None = UNSET
    phone: str | Unset | None = UNSET
    timezone: str | Unset | None = UNSET
    date_of_birth: str | Unset | None = UNSET  # ISO date
    assigned_user_id: uuid.UUID | Unset | None = UNSET
    dnd: bool | Unset = UNSET  # every channel
    dnd_channels: Mapping[str, bool] | Unset = UNSET  # the whole map of channel flags
    custom_fields: Mapping[str, Any] = field(default_factory=dict)  # key -> value (None clears)

    @classmethod
    def setting(cls, name: str, value: Any) -> ContactPatch:
        """A patch setting one field named as a workflow names it: a member above, or `custom.KEY`."""
        if name.startswith(CUSTOM_PREFIX):
            return cls(custom_fields={name.removeprefix(CUSTOM_PREFIX): value})
        if name == "custom_fields" or name not in _MEMBERS:
            raise ValueError(f"{name!r} is not a contact field a patch sets")
        return replace(cls(), **{name: value})

    def fields(self) -> dict[str, Any]:
        """The members set, keyed as the contact's fields."""
        out = {name: value for name in _MEMBERS if (value := getattr(self, name)) is not UNSET}
        if not self.custom_fields:
            out.pop("custom_fields", None)
        else:
            out["custom_fields"] = dict(self.custom_fields)
        if "dnd_channels" in out:
            out["dnd_channels"] = dict(out["dnd_channels"])
        return out


_MEMBERS = tuple(f.name for f in fields(ContactPatch))
