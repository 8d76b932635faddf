"""Structured logs: one JSON object per line, with the id of the request being served."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

REQUEST_ID: ContextVar[str | None] = ContextVar("nabla_request_id", default=None)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_HANDLER_MARK = "_nabla_handler"


class JSONFormatter(logging.Formatter):
    """A record as one JSON line: time, level, logger, message, request id and ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def info_line(logger: logging.Logger, message: str, fields: dict[str, Any]) -> None:
    """``logger.info(message, extra={"fields": fields})``, written straight to our JSON
    handler when it is the only place the record would go (no other handler, filter or
    format): the same line, without a ``LogRecord`` (a third of a warm request's time
    went to logging its access line)."""
    handler = _only_json_handler(logger)
    if handler is None:
        logger.info(message, extra={"fields": fields})
        return
    entry: dict[str, Any] = {
        "time": datetime.fromtimestamp(time.time(), UTC).isoformat(timespec="milliseconds"),
        "level": "info", "logger": logger.name, "message": message}
    request_id = REQUEST_ID.get()
    if request_id is not None:
        entry["request_id"] = request_id
    entry.update(fields)
    line = orjson.dumps(entry, default=str).decode() + handler.terminator
    with handler.lock or contextlib.nullcontext():
        handler.stream.write(line)
        handler.stream.flush()


def _only_json_handler(logger: logging.Logger) -> logging.StreamHandler[Any] | None:
    """Our JSON handler, if an INFO record of ``logger`` would reach it and nothing else."""
    if not logger.isEnabledFor(logging.INFO):
        return None
    found: logging.StreamHandler[Any] | None = None
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters or current.disabled:
            return None
        for handler in current.handlers:
            if (found is not None or not getattr(handler, _HANDLER_MARK, False)
                    or type(handler.formatter) is not JSONFormatter or handler.filters
                    or handler.level > logging.INFO
                    or not isinstance(handler, logging.StreamHandler)):
                return None
            found = handler
        current = current.parent if current.propagate else None
    return found


def make_formatter(log_format: str) -> logging.Formatter:
    """The formatter for ``log_format``: ``json`` or ``text``."""
    return JSONFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure(level: str, log_format: str) -> None:
    """Send the ``nabla`` loggers to standard output; safe to call again."""
    logger = logging.getLogger("nabla")
    logger.setLevel(level.upper())
    handler = next((h for h in logger.handlers if getattr(h, _HANDLER_MARK, False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stdout)
        setattr(handler, _HANDLER_MARK, True)
        logger.addHandler(handler)
    handler.setFormatter(make_formatter(log_format))


def uvicorn_log_config(level: str, log_format: str) -> dict[str, Any]:
    """A ``logging.config`` dict that formats uvicorn's own records like ours.

    uvicorn's access log is switched off: ``app.api.observability`` writes one line per request.
    """
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JSONFormatter"} if log_format == "json" else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "default",
                                 "stream": "ext://sys.stdout"}},
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level.upper(), "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }
