"""Message templates: the ports a template engine and an HTML sanitizer fill, and the merge fields.

Tenants write SMS and email bodies with GoHighLevel-style merge fields (`{{contact.first_name}}`,
`{{location.name}}`, `{{user.name}}`). The core decides what those fields are (`merge_context`); the
engine that renders them and the sanitizer that cleans HTML are adapters, because both are libraries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ghl_core.contacts.models import Contact
from ghl_core.shared.errors import FieldError, ValidationFailed
from ghl_core.tenancy.models import Location


class TemplateError(ValidationFailed):
    """A template that cannot be used: bad syntax, a forbidden construct, or a render that broke a limit.
    A ValidationFailed so the shells answer 422 with a pointer to the offending field."""

    code = "template_invalid"
    title = "Template invalid"

    def __init__(self, pointer: str, detail: str, line: int | None = None) -> None:
        message = f"line {line}: {detail}" if line is not None else detail
        super().__init__([FieldError(pointer, message)])
        self.pointer = pointer
        self.line = line
        self.reason = detail

    def extensions(self) -> dict[str, object]:
        return {"line": self.line} if self.line is not None else {}


class TemplateRenderer(Protocol):
    """Renders tenant-written templates safely: no access to Python internals, bounded size and work."""

    def check(self, source: str, pointer: str) -> None:
        """Raise TemplateError (naming `pointer` and the line) unless `source` compiles and uses only
        allowed constructs. Called when a template is saved, so errors surface before any send."""
        ...

    def render(self, source: str, context: Mapping[str, Any], *, pointer: str = "") -> str:
        """Plain text (SMS, email text part): merge values are inserted as they are."""
        ...

    def render_html(self, source: str, context: Mapping[str, Any], *, pointer: str = "") -> str:
        """HTML (email body): merge values are HTML-escaped, the template's own markup is kept."""
        ...


class HtmlSanitizer(Protocol):
    """Cleans tenant HTML down to what is safe to send in an email (no scripts, handlers, bad URLs)."""

    def clean(self, html: str) -> str: ...


CONTACT_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "company_name",
    "address1",
    "city",
    "state",
    "postal_code",
    "country",
    "website",
    "timezone",
    "date_of_birth",
    "gender",
    "source",
)
# Location has only some of these today; the rest render "" until it grows them.
LOCATION_FIELDS = (
    "name",
    "timezone",
    "country",
    "email",
    "phone",
    "website",
    "address1",
    "city",
    "state",
    "postal_code",
)
USER_FIELDS = ("name", "first_name", "last_name", "email", "phone")


def _value(value: Any) -> Any:
    """Missing values are "" so `default("there", true)` and plain `{{ }}` both behave."""
    return "" if value is None else value


def _split_name(name: str) -> tuple[str, str]:
    first, _, last = name.strip().partition(" ")
    return first, last.strip()


def merge_context(
    contact: Contact,
    location: Location,
    user: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The variables a template sees: `contact`, `location` and `user` namespaces, plus `extra`.

    Custom fields appear under their key (`contact.my_field`, like GHL); a custom field whose key matches
    a standard field is shadowed by it. `date_of_birth` stays a date (it prints as ISO and works with the
    `date` filter); `tags` is a sorted list. `user` is the assigned user when there is one; its first and
    last name are derived from `name` when not given. `extra` keys are added last and win, so a caller can
    add namespaces such as `appointment` or override a value on purpose.
    """
    contact_ns: dict[str, Any] = {str(k): _value(v) for k, v in contact.custom_fields.items()}
    contact_ns.update({f: _value(getattr(contact, f)) for f in CONTACT_FIELDS})
    contact_ns["id"] = str(contact.id)
    contact_ns["name"] = contact.name
    contact_ns["full_name"] = contact.name
    contact_ns["tags"] = sorted(contact.tags)

    location_ns: dict[str, Any] = {f: _value(getattr(location, f, None)) for f in LOCATION_FIELDS}
    location_ns["id"] = str(location.id)

    user_ns: dict[str, Any] = {}
    if user is not None:
        user_ns.update({str(k): _value(v) for k, v in user.items()})
        first, last = _split_name(str(user.get("name") or ""))
        user_ns["first_name"] = user_ns.get("first_name") or first
        user_ns["last_name"] = user_ns.get("last_name") or last
        if not user_ns.get("name"):
            user_ns["name"] = " ".join(p for p in (user_ns["first_name"], user_ns["last_name"]) if p)
    for f in USER_FIELDS:
        user_ns.setdefault(f, "")

    context: dict[str, Any] = {"contact": contact_ns, "location": location_ns, "user": user_ns}
    if extra:
        context.update(extra)
    return context
