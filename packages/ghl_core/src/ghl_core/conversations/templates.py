"""Message templates: the ports a template engine and an HTML sanitizer fill, and the merge fields.

Tenants write SMS and email bodies with GoHighLevel-style merge fields (`{{contact.first_name}}`,
`{{location.name}}`, `{{user.name}}`). The core decides what those fields are (`merge_context`); the
engine that renders them and the sanitizer that cleans HTML are adapters, because both are libraries.

Decisions that hold wherever a template renders (previews, campaigns, workflow steps):
- A template is untrusted code. The renderer bounds each render (sizes, work, time) and `check` refuses
  at save a template that cannot render within those limits (it renders it once with `sample_context`).
- Renders run off the event loop (`off_loop`), one worker thread per call: a slow template holds a
  thread, not every tenant. A batch of renders (a campaign's batch) is one call.
- Email HTML is sanitised after rendering too (`SanitizingRenderer`): the template was sanitised when it
  was saved, but a merge value (a contact's website, a custom field) can put a `javascript:` URL in an
  `href` the saved template only had `{{ ... }}` in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any, Final, Protocol, TypeVar

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

    def check(self, source: str, pointer: str, *, html: bool = False) -> None:
        """Raise TemplateError (naming `pointer` and the line) unless `source` compiles, uses only
        allowed constructs and renders `sample_context()` within the render limits (`html`: as
        render_html does). An error that depends on the data only (arithmetic on a custom field the
        sample lacks) is not raised here. Called when a template is saved, so errors surface before any
        send; it renders, so async callers run it through `off_loop`."""
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


class SanitizingRenderer:
    """A TemplateRenderer whose HTML is sanitised after rendering, so no merge value can bring a script or
    a `javascript:` link into an email. What the services are given as their renderer."""

    def __init__(self, renderer: TemplateRenderer, sanitizer: HtmlSanitizer) -> None:
        self._renderer = renderer
        self._sanitizer = sanitizer

    def check(self, source: str, pointer: str, *, html: bool = False) -> None:
        self._renderer.check(source, pointer, html=html)

    def render(self, source: str, context: Mapping[str, Any], *, pointer: str = "") -> str:
        return self._renderer.render(source, context, pointer=pointer)

    def render_html(self, source: str, context: Mapping[str, Any], *, pointer: str = "") -> str:
        return self._sanitizer.clean(self._renderer.render_html(source, context, pointer=pointer))


# How long a caller in the event loop waits for template work in its worker thread. The renderer stops a
# render itself well before this (its own time limit); this is the backstop, and it covers a batch.
RENDER_WAIT_SECONDS: Final = 60.0
_T = TypeVar("_T")


async def off_loop(
    work: Callable[[], _T], *, pointer: str = "", wait_seconds: float = RENDER_WAIT_SECONDS
) -> _T:
    """Runs template work (a render, a batch of renders, a save-time check) in a worker thread, so the
    event loop keeps serving every other tenant meanwhile. Past `wait_seconds` the caller stops waiting and
    gets a TemplateError naming `pointer`; the thread cannot be stopped from outside, but each render
    ends at the renderer's own time limit."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(work), wait_seconds)
    except TimeoutError:
        raise TemplateError(pointer, f"rendering took longer than {wait_seconds:g} s") from None


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


_SAMPLE_CONTACT: Final[Mapping[str, Any]] = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@example.com",
    "phone": "+14155550100",
    "company_name": "Analytical Engines",
    "address1": "12 St James's Square",
    "city": "London",
    "state": "LND",
    "postal_code": "SW1Y 4JH",
    "country": "GB",
    "website": "https://example.com",
    "timezone": "Europe/London",
    "date_of_birth": date(1815, 12, 10),
    "gender": "female",
    "source": "referral",
}


def sample_context() -> dict[str, Any]:
    """Merge data shaped as `merge_context` makes them, every standard field filled: what a template is
    test-rendered with when it is saved. Custom fields are absent (undefined, so they render "")."""
    contact: dict[str, Any] = {f: _SAMPLE_CONTACT.get(f, "") for f in CONTACT_FIELDS}
    contact |= {
        "id": "00000000-0000-4000-8000-000000000001",
        "name": "Ada Lovelace",
        "full_name": "Ada Lovelace",
        "tags": ["newsletter", "vip"],
    }
    location: dict[str, Any] = dict.fromkeys(LOCATION_FIELDS, "")
    location |= {
        "id": "00000000-0000-4000-8000-000000000002",
        "name": "Sunrise Dental",
        "timezone": "America/New_York",
        "country": "US",
    }
    user = {
        "name": "Grace Hopper",
        "first_name": "Grace",
        "last_name": "Hopper",
        "email": "grace@example.com",
    }
    return {"contact": contact, "location": location, "user": {**dict.fromkeys(USER_FIELDS, ""), **user}}
