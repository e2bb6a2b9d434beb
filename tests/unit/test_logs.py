"""playgate/logs.py: JSON lines, and loggers that would print secrets kept at WARNING."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from edge_validator.core.errors import ConfigurationError
from playgate.logs import QUIET_LOGGERS, JsonFormatter, configure_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value)


def test_debug_never_opens_the_loggers_that_print_urls(restore_logging: None) -> None:
    assert (
        configure_logging({"PLAYGATE_LOG_LEVEL": "debug", "PLAYGATE_LOG_FORMAT": "json"}) == "json"
    )
    assert logging.getLogger("playgate.validator").isEnabledFor(logging.DEBUG)
    for name in ("httpx", "httpcore", "botocore", "uvicorn.access"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO), name


def test_a_bad_format_is_a_configuration_error(restore_logging: None) -> None:
    with pytest.raises(ConfigurationError, match="PLAYGATE_LOG_FORMAT"):
        configure_logging({"PLAYGATE_LOG_FORMAT": "xml"})


def test_json_lines_carry_the_decision_fields() -> None:
    record = logging.LogRecord(
        "playgate.validator", logging.INFO, __file__, 1, "deny %s", ("x",), None
    )
    record.fields = {"event": "decision", "reason": "expired", "token_id": "tid-1"}
    doc = json.loads(JsonFormatter().format(record))
    assert doc["message"] == "deny x"
    assert (doc["event"], doc["reason"], doc["token_id"]) == ("decision", "expired", "tid-1")
    assert doc["level"] == "info"
    assert doc["time"].endswith("+00:00")
