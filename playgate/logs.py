"""PlayGate's logging: text or JSON lines on stderr, and other libraries kept away from secrets.

- ``PLAYGATE_LOG_LEVEL``: debug, info, warning or error.
- ``PLAYGATE_LOG_FORMAT``: ``text`` (default) or ``json``: one JSON object per line, with the
  fields a log pipeline indexes (``event``, ``outcome``, ``reason``, ``token_id``,
  ``session_id``, ``client``, ``latency_ms``...). Decision lines carry token ids, never tokens.
- Loggers that would print secrets are capped at WARNING whatever the level: httpx and httpcore
  log every URL they fetch (a presigned S3 URL is a credential for a minute), botocore logs
  signed requests at DEBUG, and uvicorn's access log prints request paths (tokens). The serve
  commands also turn uvicorn's access log off.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from edge_validator.env import Env

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
QUIET_LOGGERS = (
    "httpx",
    "httpcore",
    "botocore",
    "boto3",
    "urllib3",
    "s3transfer",
    "uvicorn.access",
)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            doc.update(fields)
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, separators=(",", ":"))


def configure_logging(environ: Mapping[str, str] | None = None) -> str:
    """Configure the root logger from the environment; returns the format chosen."""
    env = Env(os.environ if environ is None else environ)
    level = env.choice("PLAYGATE_LOG_LEVEL", "info", LOG_LEVELS, fold_case=True)
    fmt = env.choice("PLAYGATE_LOG_FORMAT", "text", LOG_FORMATS, fold_case=True)
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
    return fmt
