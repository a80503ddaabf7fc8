"""Domain errors. The shells map each to a status code and a problem document."""

from __future__ import annotations

from dataclasses import dataclass


class DomainError(Exception):
    """Base class: `code` is a stable machine-readable slug, `title` a short human summary."""

    code = "domain_error"
    title = "Domain error"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title

    def extensions(self) -> dict[str, object]:
        """Extra members for the problem document (RFC 9457 extension members)."""
        return {}


@dataclass(frozen=True, slots=True)
class FieldError:
    """One bad input field. `pointer` is a JSON pointer into the request body, e.g. `/email`."""

    pointer: str
    detail: str


class ValidationFailed(DomainError):
    code = "validation_failed"
    title = "Validation failed"

    def __init__(self, errors: list[FieldError], detail: str = "") -> None:
        super().__init__(detail or "; ".join(f"{e.pointer}: {e.detail}" for e in errors))
        self.errors = errors

    @classmethod
    def one(cls, pointer: str, detail: str) -> ValidationFailed:
        return cls([FieldError(pointer, detail)])


class NotFound(DomainError):
    """Also the answer for another tenant's ids: existence is never revealed."""

    code = "not_found"
    title = "Not found"


class Conflict(DomainError):
    code = "conflict"
    title = "Conflict"


class Unauthenticated(DomainError):
    code = "unauthenticated"
    title = "Authentication required"


class PermissionDenied(DomainError):
    code = "permission_denied"
    title = "Permission denied"


class TooManyRequests(DomainError):
    code = "too_many_requests"
    title = "Too many requests"

    def __init__(self, detail: str = "", retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = max(1, int(retry_after))
