"""Every error leaves as an RFC 9457 problem document (application/problem+json)."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException

from ghl_adapters.sql.availability import RETRY_AFTER_SECONDS, database_unavailable
from ghl_core.conversations.models import NoAddress
from ghl_core.shared.errors import (
    Conflict,
    DomainError,
    FieldError,
    NotFound,
    PermissionDenied,
    TooManyRequests,
    Unauthenticated,
    ValidationFailed,
)

PROBLEM_JSON = "application/problem+json"
# Errors only a caller's input raises in practice: text that is not UTF-8, documents nested beyond what
# Python can recurse, numbers and dates past what arithmetic can hold. 400, never 500.
BAD_INPUT_ERRORS: tuple[type[Exception], ...] = (UnicodeError, RecursionError, OverflowError)
_BAD_INPUT_DETAIL = "the request holds a value that cannot be processed (bad encoding, nesting or range)"
_STATUS: dict[type[DomainError], int] = {
    ValidationFailed: 422,
    NoAddress: 422,  # the contact lacks a phone or email for the channel asked for
    NotFound: 404,
    Conflict: 409,
    Unauthenticated: 401,
    PermissionDenied: 403,
    TooManyRequests: 429,
}


def problem_body(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    title: str | None = None,
    instance: str | None = None,
    errors: list[FieldError] | None = None,
    request_id: str | None = None,
    extensions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    slug = code or phrase.lower().replace(" ", "_").replace("-", "_")
    body: dict[str, Any] = {
        "type": f"urn:ghl:problem:{slug}",
        "title": title or phrase,
        "status": status,
        "detail": detail,
        "code": slug,
    }
    if instance:
        body["instance"] = instance
    request_id = request_id or structlog.contextvars.get_contextvars().get("request_id")
    if request_id:
        body["request_id"] = request_id
    if errors:
        body["errors"] = [{"pointer": e.pointer, "detail": e.detail} for e in errors]
    for key, value in (extensions or {}).items():
        body.setdefault(key, value)
    return body


def problem_bytes(status: int, detail: str, **kwargs: Any) -> bytes:
    return json.dumps(problem_body(status, detail, **kwargs)).encode()


def _response(
    request: Request[Any, Any, Any],
    status: int,
    detail: str,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> Response[Any]:
    body = problem_body(status, detail, instance=request.url.path, **kwargs)
    return Response(content=body, status_code=status, media_type=PROBLEM_JSON, headers=headers or {})


def _pointer(key: object) -> str:
    text = str(key or "").strip()
    if not text:
        return "/"
    return "/" + text.replace(".", "/") if not text.startswith("/") else text


def _validation_errors(extra: Any) -> list[FieldError]:
    errors: list[FieldError] = []
    for item in extra if isinstance(extra, list) else []:
        if isinstance(item, dict):
            errors.append(FieldError(_pointer(item.get("key")), str(item.get("message", "is invalid"))))
    return errors


def domain_problem(exc: DomainError) -> tuple[int, dict[str, str], dict[str, Any]]:
    """The status, headers and problem fields a domain error answers with."""
    status = next((s for cls, s in _STATUS.items() if isinstance(exc, cls)), 400)
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="ghl"'
    if isinstance(exc, TooManyRequests):
        headers["Retry-After"] = str(exc.retry_after)
    errors = exc.errors if isinstance(exc, ValidationFailed) else None
    return (
        status,
        headers,
        {"code": exc.code, "title": exc.title, "errors": errors, "extensions": exc.extensions()},
    )


def domain_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, DomainError)  # noqa: S101 - registered for DomainError only
    status, headers, fields = domain_problem(exc)
    return _response(request, status, exc.detail, headers, **fields)


def http_exception_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, HTTPException)  # noqa: S101
    if isinstance(exc, ValidationException):
        errors = _validation_errors(exc.extra)
        if errors:
            return _response(
                request,
                422,
                "the request has invalid fields",
                code="validation_failed",
                title="Validation failed",
                errors=errors,
            )
        return _response(request, 400, str(exc.detail), code="bad_request")
    headers = dict(exc.headers or {})
    if isinstance(exc, NotAuthorizedException):
        headers.setdefault("WWW-Authenticate", 'Bearer realm="ghl"')
    detail = str(exc.detail)
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no route matches {request.method} {request.url.path}"
    return _response(request, exc.status_code, detail, headers)


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    # The app's after_exception hook has logged it, with its traceback and the request id.
    if database_unavailable(exc):
        return database_unavailable_response(request)
    if isinstance(exc, BAD_INPUT_ERRORS):
        # Raised by decoding or arithmetic on what the caller sent (the checks before them missed it).
        return _response(request, 400, _BAD_INPUT_DETAIL, code="bad_request")
    return _response(request, 500, "an unexpected error occurred; the request id identifies it in our logs")


def database_unavailable_response(request: Request[Any, Any, Any]) -> Response[Any]:
    """503 while the database cannot be reached: nothing was changed, and the same request can be sent
    again once it is back (Retry-After)."""
    return _response(
        request,
        503,
        "the database cannot be reached right now; nothing was changed, retry later",
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
        code="database_unavailable",
        title="Service unavailable",
    )


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    DomainError: domain_error_handler,
    HTTPException: http_exception_handler,
    Exception: internal_error_handler,
}
