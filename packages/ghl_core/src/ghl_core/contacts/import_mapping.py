"""Which CSV column feeds which contact field, and turning one row's text into contact input.

Headers are matched after lower-casing and dropping everything but letters and digits, so "First Name",
"first_name" and "FIRSTNAME" are one header. The aliases cover our own export, GoHighLevel's contact
export and HubSpot's contact export."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from ghl_core.contacts.models import ATTRIBUTION_KEYS, TEXT_FIELDS, DndChannel
from ghl_core.shared.csv_cells import restore_cell
from ghl_core.shared.errors import FieldError, ValidationFailed

IGNORE = ""
CUSTOM_PREFIX = "custom_fields."
DND_PREFIX = "dnd_"
# Targets a column may feed. "name" is a full name split into first and last.
TARGETS = frozenset(
    {
        *TEXT_FIELDS,
        "name",
        "email",
        "phone",
        "timezone",
        "date_of_birth",
        "tags",
        "dnd",
        *(f"{DND_PREFIX}{c.value}" for c in DndChannel),
        *ATTRIBUTION_KEYS,
    }
)

_ALIASES: dict[str, tuple[str, ...]] = {
    "first_name": ("firstname", "first", "givenname", "fname"),
    "last_name": ("lastname", "last", "surname", "familyname", "lname"),
    "name": ("name", "fullname", "contactname"),
    "email": ("email", "emailaddress", "email1", "primaryemail", "emails"),
    "phone": (
        "phone",
        "phonenumber",
        "phone1",
        "mobile",
        "mobilephone",
        "mobilephonenumber",
        "mobilenumber",
        "cell",
        "cellphone",
        "telephone",
    ),
    "company_name": ("companyname", "company", "businessname", "organization", "organisation"),
    "address1": ("address1", "address", "streetaddress", "street", "addressline1"),
    "city": ("city", "town"),
    "state": ("state", "stateregion", "region", "province", "stateprovince"),
    "postal_code": ("postalcode", "zip", "zipcode", "postcode", "zippostalcode"),
    "country": ("country", "countryregion"),
    "website": ("website", "websiteurl", "url"),
    "timezone": ("timezone", "tz"),
    "date_of_birth": ("dateofbirth", "dob", "birthday", "birthdate"),
    "gender": ("gender",),
    "source": ("source", "contactsource", "leadsource", "originalsource"),
    # HubSpot's lifecycle stage and lead status have no field of their own here: they become tags.
    "tags": ("tags", "tag", "labels", "lifecyclestage", "leadstatus"),
    "dnd": ("dnd", "donotdisturb", "dndall"),
    **{f"{DND_PREFIX}{c.value}": (f"dnd{c.value}",) for c in DndChannel},
    **{key: (key.replace("_", ""),) for key in ATTRIBUTION_KEYS},
}
_BY_ALIAS = {alias: target for target, aliases in _ALIASES.items() for alias in aliases}
_TRUE = frozenset({"true", "yes", "y", "1", "x", "on"})
_FALSE = frozenset({"false", "no", "n", "0", "off"})


def header_key(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


def auto_mapping(headers: Iterable[str], custom_keys: Iterable[str] = ()) -> dict[str, str]:
    """Header -> target for every header we recognise; the first of two headers for one field wins."""
    custom = {header_key(k): f"{CUSTOM_PREFIX}{k}" for k in custom_keys}
    out: dict[str, str] = {}
    taken: set[str] = set()
    for header in headers:
        key = header_key(header)
        if key.startswith("customfields"):
            target = custom.get(key.removeprefix("customfields"), "")
        else:
            target = _BY_ALIAS.get(key) or custom.get(key, "")
        # Several columns may add tags; any other field takes one column.
        if target and (target not in taken or target == "tags"):
            out[header] = target
            taken.add(target)
    return out


def resolve_mapping(
    headers: list[str], explicit: Mapping[str, str], custom_keys: Iterable[str] = ()
) -> dict[str, str]:
    """The automatic mapping overridden by the caller's; an empty target ignores a column. Every bad
    entry is reported with the pointer /mapping/<header>."""
    keys = set(custom_keys)
    errors: list[FieldError] = []
    mapping = auto_mapping(headers, keys)
    for header, target in explicit.items():
        pointer = f"/mapping/{header}"
        target = target.strip()
        if header not in headers:
            errors.append(FieldError(pointer, f"the file has no column '{header}'"))
        elif target == IGNORE or target == "-":
            mapping.pop(header, None)
        elif target in TARGETS or (target.startswith(CUSTOM_PREFIX) and target[len(CUSTOM_PREFIX) :] in keys):
            mapping[header] = target
        else:
            errors.append(FieldError(pointer, f"'{target}' is not a contact field or a custom field key"))
    if errors:
        raise ValidationFailed(errors)
    used = list(mapping.values())
    if "email" not in used and "phone" not in used and not {"first_name", "last_name", "name"} & set(used):
        raise ValidationFailed.one(
            "/mapping", "no column maps to a name, an e-mail address or a phone number"
        )
    return mapping


def parse_mapping_pairs(pairs: Iterable[str]) -> dict[str, str]:
    """`Header=field` strings (CLI --map, the API's mapping parameter) as a dict."""
    out: dict[str, str] = {}
    errors: list[FieldError] = []
    for pair in pairs:
        header, sep, target = pair.partition("=")
        if not sep or not header.strip():
            errors.append(FieldError("/mapping", f"'{pair}' is not Header=field"))
        else:
            out[header.strip()] = target.strip()
    if errors:
        raise ValidationFailed(errors)
    return out


def _flag(text: str) -> bool | None:
    lowered = text.strip().lower()
    return True if lowered in _TRUE else False if lowered in _FALSE else None


def _birth_date(text: str) -> str:
    """ISO dates pass through; GoHighLevel and US spreadsheets write M/D/YYYY."""
    text = text.strip()
    for fmt in ("%m/%d/%Y", "%Y/%m/%d", "%m-%d-%Y"):
        try:
            return datetime.strptime(text, fmt).date().isoformat()
        except ValueError:
            continue
    return text[:10] if len(text) > 10 and text[10] in "T " else text


def row_input(
    values: Mapping[str, str], mapping: Mapping[str, str], extra_tags: Iterable[str] = ()
) -> tuple[dict[str, Any], list[FieldError]]:
    """Contact input (as the HTTP body would carry it) from one row. Blank cells are left out: an
    import never clears a value. A cell an export made formula-safe (`'=…`) is read without its
    apostrophe. Errors point at the column's header."""
    data: dict[str, Any] = {}
    errors: list[FieldError] = []
    tags: list[str] = list(extra_tags)
    for header, target in mapping.items():
        text = values.get(header, "")
        if not text.strip():
            continue
        if text[0] == "'":  # an export's formula-safe cell (ghl_core.shared.csv_cells)
            text = restore_cell(text)
        if target == "tags":
            tags.extend(part for part in re.split(r"[,;]", text) if part.strip())
        elif target == "name":
            first, _, last = " ".join(text.split()).partition(" ")
            data.setdefault("first_name", first)
            if last:
                data.setdefault("last_name", last)
        elif target == "dnd" or target.startswith(DND_PREFIX):
            flag = _flag(text)
            if flag is None:
                errors.append(FieldError(f"/{header}", "must be true or false (yes/no, 1/0)"))
            elif target == "dnd":
                data["dnd"] = flag
            else:
                data.setdefault("dnd_channels", {})[target[len(DND_PREFIX) :]] = flag
        elif target in ATTRIBUTION_KEYS:
            data.setdefault("attribution", {})[target] = text
        elif target.startswith(CUSTOM_PREFIX):
            data.setdefault("custom_fields", {})[target[len(CUSTOM_PREFIX) :]] = text
        elif target == "date_of_birth":
            data[target] = _birth_date(text)
        else:
            data[target] = text
    if tags:
        data["tags"] = tags
    return data, errors


def export_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def row_reason(exc: ValidationFailed, columns: dict[str, str]) -> str:
    """Why a row is rejected, naming the file's columns (`columns`: target -> header)."""
    parts = []
    for error in exc.errors:
        segments = error.pointer.strip("/").split("/")
        head = segments[0]
        if head == "custom_fields" and len(segments) > 1:
            key = f"{CUSTOM_PREFIX}{segments[1]}"
        elif head == "attribution" and len(segments) > 1:
            key = segments[-1]
        elif head == "dnd_channels" and len(segments) > 1:
            key = f"{DND_PREFIX}{segments[1]}"
        elif head in ("first_name", "last_name") and head not in columns:
            key = "name"
        else:
            key = head
        column = columns.get(key, head) or "row"
        parts.append(f"{column}: {error.detail}")
    return "; ".join(parts)


def row_cell(values: dict[str, str], header: str | None) -> str | None:
    """A non-blank cell as `row_input` reads it."""
    text = values.get(header, "") if header else ""
    if not text.strip():
        return None
    return restore_cell(text) if text[0] == "'" else text
