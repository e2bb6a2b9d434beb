"""The revocation feed nginx's native verifier polls: who may read it, and what a poll gets."""

from __future__ import annotations

from edge_validator.core.keyring import KeyRing
from edge_validator.state.feed import (
    AUTH_WINDOW,
    RevocationFeed,
    accepts,
    auth_header,
    key_probes,
    revocation_line,
)
from edge_validator.state.revocations import Revocation, RevocationView

RING = KeyRing({"k1": b"A" * 32, "k2": b"B" * 32}, "k1")
NOW = 1_800_000_000.0


def test_a_poll_is_accepted_only_with_a_fresh_mac_from_the_key_ring() -> None:
    good = auth_header(RING, "k2", NOW)
    assert accepts(RING, good, NOW)
    assert accepts(RING, good, NOW + AUTH_WINDOW)
    assert not accepts(RING, good, NOW + AUTH_WINDOW + 1)
    assert not accepts(RING, good, NOW - AUTH_WINDOW - 1)
    other = KeyRing({"k2": b"C" * 32})
    assert not accepts(RING, auth_header(other, "k2", NOW), NOW)
    kid, stamp, mac = good.split(".")
    for bad in (
        None,
        "",
        f"{kid}.{stamp}",
        f"k9.{stamp}.{mac}",
        f"{kid}.{int(stamp) + 1}.{mac}",
        f"{kid}.{stamp}.{mac[:-1]}0" if mac[-1] != "0" else f"{kid}.{stamp}.{mac[:-1]}1",
        f"{kid}.-{stamp}.{mac}",
        f"{kid}.{stamp}.{mac}.x",
        f"{kid}.{stamp}.é",
    ):
        assert not accepts(RING, bad, NOW), bad


def test_key_probes_name_every_key_and_change_with_a_secret() -> None:
    probes = key_probes(RING)
    assert [p.split(":")[0] for p in probes.split(",")] == ["k1", "k2"]
    assert key_probes(KeyRing({"k1": b"A" * 32, "k2": b"D" * 32})) != probes


def _rev(value: str, at: float = NOW) -> Revocation:
    return Revocation("token_id", value, at, at + 60)


def test_polls_get_what_came_after_their_cursor_or_everything() -> None:
    view = RevocationView()
    view.add(_rev("old", NOW - 10))
    feed = RevocationFeed(view, capacity=3)
    epoch = feed.epoch
    assert feed.since(epoch, 0) == []
    view.add(_rev("a"))
    view.add(_rev("b"))
    assert feed.since(epoch, 0) == [_rev("a"), _rev("b")]
    assert feed.since(epoch, 1) == [_rev("b")]
    assert feed.since(epoch, 2) == []
    assert feed.since("other", 2) is None  # another process, or this one restarted
    assert feed.since(epoch, 3) is None  # a cursor from the future
    assert feed.since(epoch, -1) is None
    for value in "cde":
        view.add(_rev(value))
    assert feed.since(epoch, 1) is None  # fell out of the log: start over
    assert feed.since(epoch, 2) == [_rev("c"), _rev("d"), _rev("e")]
    assert [r.value for r in feed.everything()] == ["old", "a", "b", "c", "d", "e"]


def test_the_log_holds_what_changes_the_view_not_what_a_resync_repeats() -> None:
    view = RevocationView()
    feed = RevocationFeed(view)
    view.add(_rev("a"))
    view.merge([_rev("a"), _rev("b")], NOW)  # a resync: "a" again, unchanged; "b" is news
    view.add(_rev("a", NOW - 5))  # an older revocation of the same target covers less
    view.add(_rev("a", NOW + 5))  # a later one covers more
    assert [(r.value, r.revoked_at) for r in feed.since(feed.epoch, 0) or []] == [
        ("a", NOW),
        ("b", NOW),
        ("a", NOW + 5),
    ]


def test_a_revocation_line_is_one_token_per_field() -> None:
    line = revocation_line(Revocation("video_id", "v-1:x", 1.5, 61.5))
    assert line == "r v v-1:x 1.5 61.5"
