"""A revocation acknowledged with 201 survives a Sentinel failover.

Real processes: a primary, its replica and three Sentinels (quorum 2). Revocations are issued
through the signer API while ``SENTINEL FAILOVER`` promotes the replica. Before
``PLAYGATE_REDIS_WAIT_REPLICAS`` the client kept writing to the old primary for seconds and the
demotion discarded every one of those acknowledged writes; now each 201 must be on the new
primary and denied by a validator started afterwards.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from edge_validator.core.keyring import KeyRing
from edge_validator.state import StateSettings
from edge_validator.state.redis_store import RedisStore
from playgate.redis_server import RedisServer, redis_replica, redis_sentinels, redis_server
from tests.support.servers import require_tool
from tests.support.state_helpers import AUTH, stack, validator

SERVICE = "playgate"


@pytest.fixture
def topology() -> Iterator[tuple[RedisServer, RedisServer, list[str]]]:
    with (
        redis_server() as primary,
        redis_replica(primary) as replica,
        redis_sentinels(primary, SERVICE, count=3, quorum=2) as sentinels,
    ):
        yield primary, replica, sentinels


def _sentinel(address: str, *command: str) -> list[str]:
    host, _, port = address.rpartition(":")
    argv = [require_tool("redis-cli"), "-h", host, "-p", port, "sentinel", *command]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=5, check=True
    ).stdout.split()


def _primary_port(sentinel: str) -> int:
    return int(_sentinel(sentinel, "get-master-addr-by-name", SERVICE)[1])


class Revoker(threading.Thread):
    """Revokes the given token ids one after the other, recording each answer."""

    def __init__(self, signer: str, token_ids: list[str]) -> None:
        super().__init__(daemon=True)
        self.signer = signer
        self.pending = list(token_ids)
        self.answers: dict[str, int] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=10, headers=AUTH) as client:
            while self.pending and not self.stop.is_set():
                token_id = self.pending.pop(0)
                url = f"{self.signer}/v1/revocations"
                resp = client.post(url, json={"token_id": token_id})
                self.answers[token_id] = resp.status_code
                time.sleep(0.01)


def _live_token_ids(url: str, prefix: str) -> set[str]:
    async def main() -> set[str]:
        store = RedisStore(StateSettings(redis_url=url, key_prefix=prefix))
        try:
            revs = await store.revocations(time.time())
        finally:
            await store.close()
        return {r.value for r in revs if r.kind == "token_id"}

    return asyncio.run(main())


def test_revocations_acknowledged_during_a_failover_survive_it(
    topology: tuple[RedisServer, RedisServer, list[str]], keyring: KeyRing, key_prefix: str
) -> None:
    _, replica, sentinels = topology
    state = StateSettings(
        sentinel_service=SERVICE, sentinels=tuple(sentinels), key_prefix=key_prefix
    )
    assert state.replicas_to_wait == 1  # the default with Sentinel
    with stack(keyring, state) as s:
        urls = {(doc := s.issue())["token_id"]: doc["url"] for _ in range(200)}
        revoker = Revoker(s.signer, list(urls))
        revoker.start()
        try:
            # Some revocations before the failover, then force it while they keep coming.
            deadline = time.monotonic() + 20
            while len(revoker.answers) < 20 and time.monotonic() < deadline:
                time.sleep(0.01)
            _sentinel(sentinels[0], "failover", SERVICE)
            # Until the sentinels name the replica, and then the writes reach it, or time is up.
            deadline = time.monotonic() + 30
            while _primary_port(sentinels[0]) != replica.port and time.monotonic() < deadline:
                time.sleep(0.1)
            assert _primary_port(sentinels[0]) == replica.port, "the failover did not happen"
            switched = len(revoker.answers)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and revoker.pending:
                if sum(c == 201 for c in list(revoker.answers.values())[switched:]) >= 20:
                    break
                time.sleep(0.1)
        finally:
            revoker.stop.set()
            revoker.join(20)
    acknowledged = {t for t, status in revoker.answers.items() if status == 201}
    refused = {t: status for t, status in revoker.answers.items() if status != 201}
    assert all(status == 503 for status in refused.values()), refused
    assert len(acknowledged) >= 40, revoker.answers  # before and after the switch
    # On the new primary...
    missing = acknowledged - _live_token_ids(replica.url, key_prefix)
    assert not missing, f"{len(missing)} acknowledged revocations lost in the failover"
    # ...and a validator started now denies every one of them.
    with validator(keyring, state) as fresh, httpx.Client(timeout=10) as client:
        for token_id in acknowledged:
            url = urls[token_id].replace(s.validator, fresh)
            resp = client.get(url)
            assert (resp.status_code, resp.headers.get("x-playgate-reason")) == (403, "revoked")
