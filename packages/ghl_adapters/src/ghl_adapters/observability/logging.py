"""structlog set-up shared by our own loggers and the standard library's (uvicorn, litestar, SQLAlchemy).

Two renderings of the same events: JSON lines for log collectors, and aligned, coloured lines for a
person at a terminal. GHL_LOG_FORMAT picks one; `auto` (the default) gives a terminal the console lines
and anything else (a pipe, a file, a container's log driver) JSON."""

from __future__ import annotations

import logging
import sys
from typing import IO, TYPE_CHECKING, Any, Literal, cast

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

from ghl_core.shared.masking import mask_value

if TYPE_CHECKING:
    from ghl_adapters.settings import Settings

# Libraries that log through the standard library; they are routed to the root handler so their lines
# share our format and carry the request id.
_ROUTED_LOGGERS = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "litestar",
    "sqlalchemy",
    "alembic",
    "httpx",
    "httpcore",
)
# Our access log supersedes uvicorn's, which prints the raw query string; httpx at INFO prints outbound
# URLs, which may carry tokens; SQLAlchemy at INFO echoes statements with their parameters.
_QUIETER = {
    "uvicorn.access": logging.WARNING,
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "sqlalchemy": logging.WARNING,
}
# Set by us, so they are already safe and masking could only damage them.
_TRUSTED_KEYS = frozenset({"timestamp", "level", "logger"})
_HANDLER_NAME = "ghl-structlog"

LogFormat = Literal["auto", "console", "json"]


def wants_json(log_format: str, stream: IO[str] | None = None) -> bool:
    """Whether to log JSON: as asked, or for `auto`, whenever the stream (stdout) is not a terminal."""
    if log_format == "auto":
        target = stream if stream is not None else sys.stdout
        return not (hasattr(target, "isatty") and target.isatty())
    return log_format == "json"


def mask_event(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor masking personal data and secrets in every field of the event."""
    trusted = {k: event_dict[k] for k in _TRUSTED_KEYS if k in event_dict}
    rest = {k: v for k, v in event_dict.items() if k not in _TRUSTED_KEYS}
    masked = cast(dict[str, Any], mask_value(rest, stringify_unknown=True))
    return {**masked, **trusted}


def configure_logging(level: str = "INFO", json_logs: bool = True) -> None:
    """Configure structlog and the standard library together; safe to call more than once."""
    numeric_level = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    pre_chain: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *pre_chain,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if json_logs
        else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=pre_chain,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # Exceptions become text before masking, so tracebacks are masked too.
            structlog.processors.format_exc_info,
            mask_event,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric_level)
    for name in _ROUTED_LOGGERS:
        lib_logger = logging.getLogger(name)
        lib_logger.handlers.clear()
        lib_logger.propagate = True
        lib_logger.setLevel(max(numeric_level, _QUIETER.get(name, logging.NOTSET)))


def configure_logging_from(settings: Settings, *, force_json: bool = False) -> bool:
    """Logging as the settings ask (GHL_LOG_LEVEL, GHL_LOG_FORMAT); `force_json` for a caller whose own
    output is JSON. Returns whether the lines are JSON."""
    json_logs = force_json or wants_json(settings.chosen_log_format)
    configure_logging(settings.log_level, json_logs=json_logs)
    return json_logs


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)


def bind_request_id(request_id: str) -> None:
    structlog.contextvars.bind_contextvars(request_id=request_id)


def clear_request_context() -> None:
    structlog.contextvars.clear_contextvars()
