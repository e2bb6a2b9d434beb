"""``Env.json_or_file``: every "JSON inline or from a file" setting is read by one helper."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_validator.core.cat.keys import new_cat_keyring_json
from edge_validator.core.errors import ConfigurationError
from edge_validator.core.keyring import new_keyring_json
from edge_validator.env import Env
from edge_validator.formats.config import format_keys
from tests.support.formats import format_keys_json


def test_inline_text_is_returned() -> None:
    assert Env({"X_DOC": '{"a": 1}'}).json_or_file("X_DOC") == '{"a": 1}'


def test_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    path.write_text('{"b": 2}', encoding="utf-8")
    assert Env({"X_DOC_FILE": str(path)}).json_or_file("X_DOC") == '{"b": 2}'


def test_neither_is_none_and_empty_is_unset() -> None:
    assert Env({}).json_or_file("X_DOC") is None
    assert Env({"X_DOC": "", "X_DOC_FILE": ""}).json_or_file("X_DOC") is None


def test_both_are_refused(tmp_path: Path) -> None:
    env = Env({"X_DOC": "{}", "X_DOC_FILE": str(tmp_path / "doc.json")})
    with pytest.raises(ConfigurationError, match="set X_DOC or X_DOC_FILE, not both"):
        env.json_or_file("X_DOC")


def test_unreadable_file_names_the_variable(tmp_path: Path) -> None:
    env = Env({"X_DOC_FILE": str(tmp_path / "missing.json")})
    with pytest.raises(ConfigurationError, match="X_DOC_FILE: cannot read") as caught:
        env.json_or_file("X_DOC")
    assert "No such file" in str(caught.value)


@pytest.mark.parametrize("inline", [True, False])
def test_the_three_documents_read_through_it(tmp_path: Path, inline: bool) -> None:
    docs = {
        "PLAYGATE_KEYRING": new_keyring_json("k9"),
        "PLAYGATE_CAT_KEYS": new_cat_keyring_json("cat9"),
        "PLAYGATE_FORMAT_KEYS": format_keys_json(),
    }
    environ: dict[str, str] = {}
    for name, text in docs.items():
        if inline:
            environ[name] = text
        else:
            path = tmp_path / f"{name}.json"
            path.write_text(text, encoding="utf-8")
            environ[f"{name}_FILE"] = str(path)
    env = Env(environ)
    assert env.keyring().active.key_id == "k9"
    cat = env.cat_keyring()
    assert cat is not None
    assert cat.signing_key().key_id == "cat9"
    keys = format_keys(env)
    assert keys is not None
    assert "mcdn-1" in keys.mediacdn


@pytest.mark.parametrize("name", ["PLAYGATE_KEYRING", "PLAYGATE_CAT_KEYS", "PLAYGATE_FORMAT_KEYS"])
def test_each_refuses_both(name: str) -> None:
    env = Env({name: "{}", f"{name}_FILE": "/nonexistent"})
    reader = {
        "PLAYGATE_KEYRING": env.keyring,
        "PLAYGATE_CAT_KEYS": env.cat_keyring,
        "PLAYGATE_FORMAT_KEYS": lambda: format_keys(env),
    }[name]
    with pytest.raises(ConfigurationError, match="not both"):
        reader()


def test_no_keyring_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="PLAYGATE_KEYRING_FILE"):
        Env({}).keyring()
    assert Env({}).cat_keyring() is None
    assert format_keys(Env({})) is None
