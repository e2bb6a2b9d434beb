"""The revocation log both backends keep: numbered entries, an epoch, and the notices published.

Every revocation written gets the next sequence number of the log; the log holds one entry per
live target, at the number of its latest write. A validator remembers the last number it has
and asks only for what came after (``Changes``), page by page: a cold start is the same read
from 0. Each published notice carries its number, so a listener sees a gap at once and fetches
only what it missed.

The epoch names one life of the log. Redis restarted without its data starts a new epoch (and
its numbers from 1 again): a validator that sees another epoch, or a number going backwards,
knows that Redis lost revocations, writes back the ones it still holds, and marks the new epoch
as a replacement (``Epoch.replaced``), so that every validator, fresh ones included, knows that
use counts made before ``Epoch.since`` are gone.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Sequence
from typing import Any, NamedTuple

from .revocations import Revocation

log = logging.getLogger("playgate.state")

# Entries per read: each read blocks Redis about a millisecond (docs/redis.md, measured).
PAGE = 500
# Reads sent in one round trip by a reader far behind (a cold start): each still one page.
WINDOWS = 10


def new_epoch_id() -> str:
    return secrets.token_hex(8)


class Epoch(NamedTuple):
    id: str
    # When it began (the store's clock, unix seconds).
    since: float
    # The epoch it replaced after the store lost its data ("": none known).
    replaced: str = ""


class Changes(NamedTuple):
    """One page of the log after a sequence number."""

    epoch: Epoch
    # Where the next read starts: the last entry returned when the page is full, else the
    # log's current number (nothing lies between).
    next_after: int
    # JSON of each revocation, in log order; parsed by the reader, off the store's connection.
    docs: list[str]
    # A full page: more may follow.
    more: bool
    # The log's current number (how far behind the reader is).
    head: int
    # The page's last entry: its target and number (None: an empty page).
    last: tuple[str, int] | None = None
    # The number the log holds for the target the reader asked about (``anchor``), None when
    # it holds none or none was asked about: a number held before that is gone or lower means
    # the store came back from an older copy of itself.
    anchor: int | None = None


class Notice(NamedTuple):
    """What a write publishes: the revocation, its number and the epoch it was written in."""

    rev: Revocation
    seq: int
    epoch: str

    def to_json(self) -> str:
        doc = {**self.rev._asdict(), "seq": self.seq, "epoch": self.epoch}
        return json.dumps(doc, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Notice:
        try:
            doc = json.loads(text)
            # A notice without a number (an older signer) still revokes; seq 0 asks for a
            # catch-up.
            return cls(Revocation.from_doc(doc), int(doc.get("seq", 0)), str(doc.get("epoch", "")))
        except (OverflowError, RecursionError) as exc:  # "seq": 1e999; nesting too deep
            raise ValueError("not a notice") from exc


def parse_revocations(docs: Sequence[str]) -> list[Revocation]:
    """The revocations of stored JSON documents; a malformed one is skipped, with a warning.

    A page is decoded as one JSON array: one parser call for hundreds of documents costs
    about a third of one call each (a cold start parses a million)."""
    # RecursionError: nesting deeper than the parser goes, which no writer of ours produces.
    try:
        parsed: list[Any] = json.loads("[" + ",".join(docs) + "]")
    except (ValueError, RecursionError):
        parsed = []
        for doc in docs:  # find the bad one, keep the rest
            try:
                parsed.append(json.loads(doc))
            except (ValueError, RecursionError):
                log.warning("ignoring a malformed revocation entry")
    out = []
    for doc in parsed:
        try:
            out.append(Revocation.from_doc(doc))
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed revocation entry")
    return out
