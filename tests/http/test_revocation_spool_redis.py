"""The signer's spool replayed into a real redis-server never narrows a revocation Redis holds."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from edge_validator.state import Revocation, StateSettings
from edge_validator.state.redis_store import RedisStore
from edge_validator.state.revocation_log import Notice, parse_revocations
from signer.revocation_spool import RevocationSpool


def test_a_replayed_older_revocation_keeps_the_stronger_one_redis_holds(
    tmp_path: Path, redis_url: str, key_prefix: str
) -> None:
    now = time.time()
    # Spooled during an outage: older (revoked earlier) and, for two targets, shorter-lived.
    spooled = [
        Revocation("video_id", "v-later", now - 60, now + 600),
        Revocation("user_id", "u-longer", now - 60, now + 600),
        Revocation("video_id", "v-mixed", now - 60, now + 7200),
        Revocation("token_id", "t-new", now - 60, now + 600),
    ]
    # What another signer wrote to Redis meanwhile, stronger in one way or another.
    held = [
        Revocation("video_id", "v-later", now - 1, now + 3600),  # later and longer: kept whole
        Revocation("user_id", "u-longer", now - 120, now + 3600),  # earlier but longer-lived
        Revocation("video_id", "v-mixed", now - 1, now + 3600),  # later, but shorter-lived
    ]
    strongest = {
        "video_id:v-later": held[0],
        "user_id:u-longer": held[1]._replace(revoked_at=now - 60),  # the later of each
        "video_id:v-mixed": held[2]._replace(expires_at=now + 7200),
        "token_id:t-new": spooled[3],
    }

    async def scenario() -> None:
        store = RedisStore(StateSettings(redis_url=redis_url, key_prefix=key_prefix))
        notices: list[Notice] = []
        subscribed = asyncio.Event()

        async def on_subscribed() -> None:
            subscribed.set()

        listener = asyncio.create_task(store.listen(notices.append, on_subscribed))
        try:
            await asyncio.wait_for(subscribed.wait(), 5)
            for rev in held:
                await store.revoke(rev)
            spool = RevocationSpool(tmp_path / "spool", store)
            for rev in spooled:
                await spool.append(rev)
            head = (await store.changes(0)).head
            assert await spool.replay() == 0
            stored = {rev.member: rev for rev in await store.revocations(time.time())}
            assert stored == strongest
            # Only what changed took a new number (v-later was covered: no write, no notice),
            # and each notice carries what Redis now holds, so a validator in step is too.
            tail = await store.changes(head)
            changed = {rev.member for rev in parse_revocations(tail.docs)}
            assert changed == {"user_id:u-longer", "video_id:v-mixed", "token_id:t-new"}
            deadline = time.monotonic() + 5
            while len(notices) < len(held) + 3 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            replayed = {n.rev.member: n.rev for n in notices[len(held) :]}
            assert replayed == {member: strongest[member] for member in changed}
            # Replaying the same spool again writes nothing.
            for rev in spooled:
                await spool.append(rev)
            assert await spool.replay() == 0
            assert (await store.changes(tail.next_after)).docs == []
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
            await store.close()

    asyncio.run(scenario())
