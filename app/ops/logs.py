"""Structured logs: one JSON object per line, with the id of the request being served."""

from __future__ import annotations

import asyncio
import atexit
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
    went to logging its access line).

    On an event loop the line is written with the others of the same turn of the loop, in
    one write at the end of that turn (``_Lines``): under load one system call serves many
    requests (a write and flush a line cost a warm request ~20 us of its ~160), and alone
    a line is written as soon as its request is done."""
    handler = _only_json_handler(logger)
    if handler is None:
        logger.info(message, extra={"fields": fields})
        return
    entry: dict[str, Any] = {"time": _now(), "level": "info", "logger": logger.name,
                             "message": message}
    request_id = REQUEST_ID.get()
    if request_id is not None:
        entry["request_id"] = request_id
    entry.update(fields)
    line = orjson.dumps(entry, default=str).decode() + handler.terminator
    if isinstance(handler, _LineHandler):
        handler.lines.add(line)
        return
    with handler.lock or contextlib.nullcontext():
        handler.stream.write(line)
        handler.stream.flush()


_second: tuple[int, str] = (-1, "")


def _now() -> str:
    """The time as ``JSONFormatter`` writes it (ISO 8601, UTC, milliseconds), with the
    text of the current second made once a second."""
    global _second
    now = time.time()
    second = int(now)
    if second != _second[0]:
        _second = (second, datetime.fromtimestamp(second, UTC).isoformat())
    text = _second[1]
    # "2026-11-28T00:10:51+00:00" -> "2026-11-28T00:10:51.489+00:00" (truncated, as isoformat)
    return f"{text[:-6]}.{int((now - second) * 1000):03d}{text[-6:]}"


class _Lines:
    """Lines waiting for the end of the event loop's turn, then written in one write."""

    def __init__(self, handler: logging.StreamHandler[Any]) -> None:
        self.handler = handler
        self.waiting: list[str] = []
        self.loop: asyncio.AbstractEventLoop | None = None  # the loop a write is due on

    def add(self, line: str) -> None:
        """Write ``line`` at the end of this turn of the running loop (now, if none runs)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on an event loop: at once, after those waiting
            loop = None
        with self.handler.lock or contextlib.nullcontext():
            self.waiting.append(line)
            if loop is None:
                self.write_locked()
            elif self.loop is not loop:
                self.loop = loop
                loop.call_soon(self.write)

    def write(self) -> None:
        """Write what waits (under the handler's lock), then flush."""
        with self.handler.lock or contextlib.nullcontext():
            self.write_locked()

    def write_locked(self) -> None:
        self.loop = None
        if self.waiting:
            text, self.waiting = "".join(self.waiting), []
            self.handler.stream.write(text)
            self.handler.stream.flush()


class _LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Our handler: writes the lines still waiting (``_Lines``) before any other record, so
    that the output keeps the order of events, and at exit."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.lines = _Lines(self)
        atexit.register(self.lines.write)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.write()
        super().emit(record)

    def flush(self) -> None:
        with self.lock or contextlib.nullcontext():
            self.lines.write_locked()
            super().flush()


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
        handler = _LineHandler(sys.stdout)
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
