"""A signer and a validator sharing Redis state (separate clients, as in production)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

import httpx

from edge_validator.admin_key import AdminKey
from edge_validator.asgi.app import create_app as create_validator
from edge_validator.core.keyring import KeyRing
from edge_validator.settings import ValidatorSettings
from edge_validator.state import StateSettings
from signer.api_keys import ApiKeys, hash_api_key
from signer.app import create_app as create_signer
from signer.settings import SignerSettings
from tests.support.factories import ADMIN_KEY_HASH, API_KEY, SAMPLES
from tests.support.servers import serve_app

AUTH = {"Authorization": f"Bearer {API_KEY}"}


class Stack(NamedTuple):
    signer: str
    validator: str
    keyring: KeyRing
    state: StateSettings

    def issue(self, **body: object) -> dict[str, str]:
        body.setdefault("video_id", "demo")
        # The URL itself is judged here (revocation, limits, faults): no playback session, so
        # its manifest answers 200, not a redirect. Sessions: tests/http/test_sessions.py.
        body.setdefault("session_seconds", 0)
        resp = httpx.post(f"{self.signer}/v1/playback-urls", json=body, headers=AUTH, timeout=10)
        assert resp.status_code == 201, resp.text
        doc: dict[str, str] = resp.json()
        return doc

    def revoke(self, **target: str) -> httpx.Response:
        return httpx.post(f"{self.signer}/v1/revocations", json=target, headers=AUTH, timeout=10)


@contextlib.contextmanager
def validator(keyring: KeyRing, state: StateSettings) -> Iterator[str]:
    settings = ValidatorSettings(
        keyring=keyring, media_root=SAMPLES, state=state, admin_key=AdminKey(ADMIN_KEY_HASH)
    )
    with serve_app(create_validator(settings)) as url:
        yield url


@contextlib.contextmanager
def stack(keyring: KeyRing, state: StateSettings, **signer: Any) -> Iterator[Stack]:
    """``signer``: more SignerSettings fields (a revocation spool, a not-before margin)."""
    with validator(keyring, state) as validator_url:
        settings = SignerSettings(
            keyring=keyring,
            api_keys=ApiKeys({"test": hash_api_key(API_KEY)}),
            public_url=validator_url,
            state=state,
            admin_key=AdminKey(ADMIN_KEY_HASH),
            **signer,
        )
        with serve_app(create_signer(settings)) as signer_url:
            yield Stack(signer_url, validator_url, keyring, state)


def wait_for_status(url: str, status: int, timeout: float = 10.0) -> httpx.Response:
    """Poll ``url`` until it answers ``status``; the last response either way."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=5) as client:
        while True:
            resp = client.get(url)
            if resp.status_code == status or time.monotonic() > deadline:
                return resp
            time.sleep(0.01)
