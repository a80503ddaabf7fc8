"""What a sender asks for before it is a message: a draft (already rendered), checked as the API takes
it, and the outcome per contact of queueing many."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from html.parser import HTMLParser
from typing import Any

from ghl_core.conversations.models import MAX_EMAIL_BODY, MAX_SMS_BODY, MAX_SUBJECT, Channel, Message
from ghl_core.conversations.templates import HtmlSanitizer
from ghl_core.shared.errors import FieldError, ValidationFailed


@dataclass(frozen=True, slots=True)
class Draft:
    """What to send, already rendered: the body text (SMS, or the email's text part)."""

    channel: Channel
    body: str
    subject: str | None = None
    html: str | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    marketing: bool = False
    send_at: datetime | None = None
    campaign_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class Queued:
    """One contact's outcome of `enqueue_many`: its message (created now or found by its cause), or why
    it was skipped."""

    contact_id: uuid.UUID
    message: Message | None
    created: bool = False
    skipped: str | None = None


def clean_draft(data: dict[str, Any], sanitizer: HtmlSanitizer) -> tuple[Draft, str | None]:
    """A send request checked (every problem at its pointer), its HTML sanitised: the draft and its
    ledger cause (`api:` + the caller's `cause`)."""
    errors: list[FieldError] = []
    allowed = {"channel", "body", "subject", "html", "send_at", "marketing", "cause", "attachments"}
    errors += [FieldError(f"/{k}", "is not a known field") for k in sorted(set(data) - allowed)]
    try:
        channel = Channel(str(data.get("channel")))
    except ValueError:
        raise ValidationFailed.one("/channel", "must be 'sms' or 'email'") from None
    body = data.get("body") or ""
    if not isinstance(body, str):
        errors.append(FieldError("/body", "must be a string"))
        body = ""
    html = data.get("html")
    subject = data.get("subject")
    if channel is Channel.SMS:
        if not body.strip():
            errors.append(FieldError("/body", "is required for an SMS"))
        elif len(body) > MAX_SMS_BODY:
            errors.append(FieldError("/body", f"must be at most {MAX_SMS_BODY} characters"))
        if subject is not None or html is not None:
            errors.append(FieldError("/subject" if subject is not None else "/html", "an SMS has none"))
    else:
        if not isinstance(subject, str) or not subject.strip() or len(subject) > MAX_SUBJECT:
            errors.append(FieldError("/subject", f"is required, 1 to {MAX_SUBJECT} characters"))
        elif "\n" in subject or "\r" in subject:
            errors.append(FieldError("/subject", "must be one line"))
        if html is not None and not isinstance(html, str):
            errors.append(FieldError("/html", "must be a string"))
            html = None
        if not body.strip() and not (html or "").strip():
            errors.append(FieldError("/body", "an email needs a body or html"))
        if len(body) + len(html or "") > MAX_EMAIL_BODY:
            errors.append(FieldError("/body", f"must be at most {MAX_EMAIL_BODY} characters in all"))
    send_at = data.get("send_at")
    if send_at is not None and not isinstance(send_at, datetime):
        errors.append(FieldError("/send_at", "must be a date-time"))
        send_at = None
    elif isinstance(send_at, datetime) and send_at.tzinfo is None:
        errors.append(FieldError("/send_at", "must carry a time zone offset"))
    cause = data.get("cause")
    if cause is not None and (not isinstance(cause, str) or not 1 <= len(cause) <= 200):
        errors.append(FieldError("/cause", "must be 1 to 200 characters"))
    marketing = data.get("marketing", False)
    if not isinstance(marketing, bool):
        errors.append(FieldError("/marketing", "must be true or false"))
    if errors:
        raise ValidationFailed(errors)
    clean_html = sanitizer.clean(html) if html else None
    if channel is Channel.EMAIL and not body.strip() and clean_html:
        body = html_to_text(clean_html)
    draft = Draft(
        channel=channel,
        body=body,
        subject=subject.strip() if isinstance(subject, str) else None,
        html=clean_html,
        marketing=bool(marketing),
        send_at=send_at,
    )
    return draft, (f"api:{cause}" if cause else None)


def html_to_text(html: str) -> str:
    """A plain-text part for an HTML-only email: tags dropped, whitespace folded."""
    parts: list[str] = []

    class _Text(HTMLParser):
        def handle_data(self, data: str) -> None:
            parts.append(data)

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag in ("br", "p", "div", "tr", "li", "h1", "h2", "h3"):
                parts.append("\n")

    _Text().feed(html)
    lines = (" ".join(line.split()) for line in "".join(parts).splitlines())
    return "\n".join(line for line in lines if line).strip()
