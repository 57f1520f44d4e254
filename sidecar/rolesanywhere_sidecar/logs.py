"""Log setup: one line per event, as text or JSON, on stderr.

Named `logs` rather than `logging` so it never shadows the standard library module.

No code path passes a secret to the logger. As a second line of defence, the formatter replaces
every secret registered with the `Redactor` (the endpoint token, the current and recent secret
keys and session tokens) before a line is written, so even an exception text echoing one stays clean.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import logging
import threading
from typing import TextIO

LOGGER_NAME = "rolesanywhere_sidecar"
REDACTED = "[REDACTED]"
_SKIPPED_RECORD_KEYS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}


def get_logger(component: str) -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{component}")


class Redactor:
    """Remembers the most recent secrets and blanks them out of text."""

    def __init__(self, capacity: int = 16) -> None:
        self._secrets: collections.deque[str] = collections.deque(maxlen=capacity)
        self._lock = threading.Lock()

    def add(self, *secrets: str) -> None:
        with self._lock:
            for secret in secrets:
                if secret and secret not in self._secrets:
                    self._secrets.append(secret)

    def redact(self, text: str) -> str:
        with self._lock:
            secrets = list(self._secrets)
        for secret in secrets:
            text = text.replace(secret, REDACTED)
        return text


def _fields(record: logging.LogRecord) -> dict[str, object]:
    """The structured fields passed with `extra=`."""
    return {key: value for key, value in vars(record).items() if key not in _SKIPPED_RECORD_KEYS}


def _timestamp(record: logging.LogRecord) -> str:
    moment = dt.datetime.fromtimestamp(record.created, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class TextFormatter(logging.Formatter):
    """`2030-01-01T00:00:00.000Z INFO refresher: credentials refreshed key=value ...`"""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        component = record.name.removeprefix(LOGGER_NAME).lstrip(".") or "main"
        parts = [_timestamp(record), record.levelname, f"{component}: {record.getMessage()}"]
        parts += [f"{key}={json.dumps(value, default=str)}" for key, value in _fields(record).items()]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return self.redactor.redact(line)


class JsonFormatter(logging.Formatter):
    """`{"time": ..., "level": "info", "logger": "refresher", "message": ..., <fields>}`"""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, object] = {
            "time": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name.removeprefix(LOGGER_NAME).lstrip(".") or "main",
            "message": record.getMessage(),
        }
        document.update(_fields(record))
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return self.redactor.redact(json.dumps(document, default=str))


def configure(log_format: str, level: str, stream: TextIO, redactor: Redactor) -> None:
    """Send the sidecar's logs to `stream` in `log_format` ("text" or "json") from `level` up."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(redactor) if log_format == "json" else TextFormatter(redactor))
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False
