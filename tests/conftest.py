from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from edge_validator.asgi.app import create_app as create_validator
from edge_validator.core.keyring import KeyRing
from edge_validator.settings import ValidatorSettings
from signer.api_keys import ApiKeys, hash_api_key
from signer.app import create_app as create_signer
from signer.settings import SignerSettings
from tests.support import factories
from tests.support.factories import API_KEY, SAMPLES
from tests.support.servers import serve_app


@pytest.fixture(scope="session")
def keyring() -> KeyRing:
    return factories.keyring()


@pytest.fixture
def now() -> float:
    return float(int(time.time()))


@pytest.fixture(scope="session")
def validator_url(keyring: KeyRing) -> Iterator[str]:
    settings = ValidatorSettings(keyring=keyring, media_root=SAMPLES)
    with serve_app(create_validator(settings)) as url:
        yield url


@pytest.fixture(scope="session")
def signer_url(keyring: KeyRing, validator_url: str) -> Iterator[str]:
    settings = SignerSettings(
        keyring=keyring, api_keys=ApiKeys({"test": hash_api_key(API_KEY)}), public_url=validator_url
    )
    with serve_app(create_signer(settings, contract_check=True)) as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """One real redis-server for the session; tests isolate themselves by key prefix."""
    from playgate.redis_server import redis_server

    with redis_server() as server:
        yield server.url


@pytest.fixture(scope="session")
def cluster_url() -> Iterator[str]:
    """A real 3-node Redis Cluster for the session (``redis-cli --cluster create``)."""
    from playgate.redis_server import redis_cluster

    with redis_cluster() as servers:
        yield servers[0].url.removesuffix("/0")


@pytest.fixture
def key_prefix(request: pytest.FixtureRequest) -> str:
    return "t" + re.sub(r"[^A-Za-z0-9]", "", request.node.name)[-40:] + str(time.monotonic_ns())
