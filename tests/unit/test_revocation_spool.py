"""The signer's revocation spool: on disk before the answer, replayed in order, idempotent."""

from __future__ import annotations

import asyncio
from pathlib import Path

from edge_validator.core.errors import StoreUnavailable
from edge_validator.state import Revocation
from edge_validator.state.memory import MemoryStore
from signer.revocation_spool import RevocationSpool

NOW = 1_800_000_000.0


class DownStore(MemoryStore):
    """A store that is unreachable until ``up`` is set (then it is the in-memory store)."""

    def __init__(self) -> None:
        super().__init__(clock=lambda: NOW)
        self.up = False
        self.writes: list[str] = []

    async def revoke(self, rev: Revocation) -> None:
        if not self.up:
            raise StoreUnavailable("redis: ConnectionError: refused")
        self.writes.append(rev.value)
        await super().revoke(rev)


def _rev(value: str, expires_at: float = NOW + 3600) -> Revocation:
    return Revocation("token_id", value, NOW, expires_at)


def test_queued_revocations_are_replayed_in_order_once_the_store_answers(tmp_path: Path) -> None:
    store = DownStore()
    spool = RevocationSpool(tmp_path / "spool", store, clock=lambda: NOW)

    async def scenario() -> None:
        for value in ("a", "b", "c"):
            await spool.append(_rev(value))
        assert spool.pending() == 3
        assert await spool.replay() == 3  # still down: nothing lost, nothing dropped
        assert spool.last_error
        store.up = True
        assert await spool.replay() == 0
        assert store.writes == ["a", "b", "c"]
        assert (tmp_path / "spool").read_bytes() == b""
        assert not spool.holds_any()
        assert spool.last_error is None

    asyncio.run(scenario())


def test_expired_and_unreadable_lines_are_dropped(tmp_path: Path) -> None:
    store = DownStore()
    store.up = True
    path = tmp_path / "spool"
    path.write_text("not json\n" + _rev("old", expires_at=NOW - 1).to_json() + "\n")
    spool = RevocationSpool(path, store, clock=lambda: NOW)
    assert asyncio.run(spool.replay()) == 0
    assert store.writes == []


def test_a_revocation_appended_during_a_replay_is_kept(tmp_path: Path) -> None:
    store = DownStore()
    store.up = True
    spool = RevocationSpool(tmp_path / "spool", store, clock=lambda: NOW)
    arrivals = [_rev("late")]

    async def revoke_and_append(rev: Revocation) -> None:
        await MemoryStore.revoke(store, rev)
        store.writes.append(rev.value)
        if arrivals:
            await spool.append(arrivals.pop())  # another request arrives during the replay

    store.revoke = revoke_and_append  # type: ignore[method-assign]

    async def scenario() -> None:
        await spool.append(_rev("first"))
        assert await spool.replay() == 2  # not emptied: "late" came after the replay read it
        assert await spool.replay() == 0
        # Written again: a replay is idempotent, so re-writing "first" costs nothing.
        assert store.writes == ["first", "first", "late"]

    asyncio.run(scenario())
