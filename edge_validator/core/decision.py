"""The decision, as a pure function: no I/O, no globals, an explicit clock.

Every adapter verifies through one ``Verifier``: it holds the key ring, the leeway, the longest
token lifetime accepted and the memo of authenticated tokens, so no adapter can skip a check by
forgetting an argument.
"""

from __future__ import annotations

from itertools import islice
from typing import NamedTuple

from .addresses import ClientAddress, in_network
from .cat.claims import CatClaims
from .cat.verify import CatVerifier, looks_like_cat
from .errors import Expired, IpMismatch, LifetimeExceeded, NotYetValid, OutOfScope
from .keyring import SESSION_CONTEXT, KeyRing
from .paths import (
    Target,
    TargetFields,
    normalize_path,
    split_fields,
    split_target,
    with_header_token,
)
from .token import Claims, open_token

DEFAULT_LEEWAY = 5
MAX_LEEWAY = 60
DEFAULT_MAX_TTL = 3600
MAX_TTL_LIMIT = 7 * 86400
# Playback sessions: the default a start token asks for, and the cap every edge enforces.
DEFAULT_SESSION = 4 * 3600
DEFAULT_MAX_SESSION = 12 * 3600
MAX_SESSION_LIMIT = 7 * 86400
# Authenticated tokens remembered per kind (PLAYGATE_MEMO_SIZE): one entry per live viewer of a
# process, about 0.7 KB each (the token string, its claims and the dict slot).
MEMO_SIZE = 100_000
MEMO_SIZE_LIMIT = 10_000_000
Client = ClientAddress | str | None
# NamedTuple's own __new__ is Python code; building the tuple directly saves a frame per request.
_new_tuple = tuple.__new__


class Grant(NamedTuple):
    """A verified permission to fetch ``path`` (decoded, token stripped)."""

    claims: Claims
    path: str
    # What the request carried: the token, where it travelled, the raw path and the query.
    target: Target
    # The clock reading the decision was made with; everything after it in the request uses it.
    now: float

    @property
    def token_id(self) -> str:
        return self.claims.token_id

    def seconds_left(self) -> int:
        return max(0, int(self.claims.expires_at - self.now))


class Verifier:
    """Verifies tokens against one key ring under one policy, remembering authentic tokens."""

    __slots__ = (
        "_memo",
        "_session_memo",
        "_sessions",
        "cat",
        "keyring",
        "leeway",
        "max_session",
        "max_ttl",
        "memo_size",
    )

    def __init__(
        self,
        keyring: KeyRing,
        *,
        max_ttl: int,
        leeway: int = DEFAULT_LEEWAY,
        memo_size: int = MEMO_SIZE,
        max_session: int = DEFAULT_MAX_SESSION,
        cat: CatVerifier | None = None,
    ) -> None:
        self.keyring = keyring
        # CTA-5007 Common Access Tokens, verified next to PlayGate's own (None: refused).
        self.cat = cat
        # The same keys under the session context: session tokens verify here and only here.
        # Made on first use: a one-shot Verifier (``verify``) never pays for it.
        self._sessions: KeyRing | None = None
        # Revocations are kept for the longest lifetime the signer issues; a longer-lived token
        # (an old setting, a hand-made one) would outlive its revocation, so it is refused.
        # Sessions likewise, with PLAYGATE_MAX_SESSION.
        self.max_ttl = max_ttl
        self.max_session = max_session
        self.leeway = leeway
        # Tokens this verifier has authenticated, with their claims. A player fetches dozens of
        # segments with one token; only the first request pays for decoding and the MAC.
        # Keyed by the exact token string; expiry, scope and address are still judged on every
        # request. Bounded (its oldest eighth out when full; 0: none), and it dies with the
        # verifier when keys change.
        # One memo per token kind: a string authenticated as one kind says nothing of the other.
        # Plain dicts (insertion-ordered): an OrderedDict costs more per new token, for the
        # linked list that makes removing the oldest entry O(1); see _forget_oldest.
        self._memo: dict[str, Claims] = {}
        self._session_memo: dict[str, Claims] = {}
        self.memo_size = memo_size

    def __repr__(self) -> str:
        return f"Verifier({self.keyring!r}, max_ttl={self.max_ttl}, leeway={self.leeway})"

    @property
    def sessions(self) -> KeyRing:
        """The same keys under the session context: session tokens verify here and only here."""
        if self._sessions is None:
            self._sessions = self.keyring.with_context(SESSION_CONTEXT)
        return self._sessions

    def open(self, token: str | None, session: bool = False) -> Claims:
        """The claims of an authentic start (or session) token, remembered; else an error."""
        memo = self._session_memo if session else self._memo
        if token:
            known = memo.get(token)
            if known is not None:
                return known
        return self._authenticate(token, session, memo)

    def _authenticate(self, token: str | None, session: bool, memo: dict[str, Claims]) -> Claims:
        """Decode and MAC-check a token not in ``memo``, then remember it."""
        claims: Claims
        if session:  # sessions are PlayGate tokens only, minted by this edge
            claims = open_token(token, self.sessions)
        elif token and self.cat is not None and looks_like_cat(token):
            claims = self.cat.open(token)
        else:
            claims = open_token(token, self.keyring)  # raises MissingToken for None or ""
        if self.memo_size:
            if len(memo) >= self.memo_size:
                _forget_oldest(memo, self.memo_size)
            memo[token] = claims  # type: ignore[index]  # open_token refused None and ""
        return claims

    def verify_target(
        self, target: str, client: Client, now: float, header_token: str | None = None
    ) -> Grant:
        """Split a raw request target and verify it (``header_token``: a CAT from its header)."""
        if header_token is None:  # the usual case, without a call that would return its input
            return self._decide(split_fields(target), client, now)
        return self._decide(with_header_token(split_target(target), header_token), client, now)

    def judge(self, target: Target, client: Client, now: float) -> Grant:
        """Decide whether ``target`` lets ``client`` fetch its path at time ``now``.

        ``client`` is the viewer's address, parsed or as text (then parsed only when the token
        is bound to a network), or None when unknown.
        """
        return self._decide(target, client, now)

    def _decide(self, target: TargetFields, client: Client, now: float) -> Grant:
        """``judge`` for a ``Target`` or its fields as a plain tuple (``split_fields``)."""
        # One unpack each instead of attribute lookups: this runs for every segment.
        token, raw_path, _query, _in_query, session = target
        decoded = normalize_path(raw_path)
        memo = self._session_memo if session else self._memo
        # No test for a missing token first: the memo never holds None or "" (open_token refuses
        # both), so looking one up finds nothing and _authenticate refuses it.
        claims = memo.get(token)  # type: ignore[arg-type]
        if claims is None:
            claims = self._authenticate(token, session, memo)
        _kid, expires_at, not_before, scope, token_id, _sid, network, _uid, _u, _s, _ss = claims
        leeway = self.leeway
        if now > expires_at + leeway:
            raise Expired("the token has expired", token_id=token_id)
        if now + leeway < not_before:
            raise NotYetValid("the token is not valid yet", token_id=token_id)
        lifetime = expires_at - not_before
        if lifetime > (self.max_session if session else self.max_ttl) and not (
            self._renewable(claims, lifetime)
        ):
            raise LifetimeExceeded("the token lives longer than allowed", token_id=token_id)
        # The scope ends in '/' (checked when the token was parsed): a prefix test is segment-wise.
        if not decoded.startswith(scope):
            raise OutOfScope("the token does not cover this path", token_id=token_id)
        if network is not None and not in_network(client, network):
            raise IpMismatch("the token is bound to another client network", token_id=token_id)
        if claims.__class__ is not Claims:  # a CAT: the checks only a CAT carries
            self._judge_cat(claims, decoded, client, now)
        # A Target from the fields (from a Target passed to ``judge``: an equal one).
        return _new_tuple(Grant, (claims, decoded, _new_tuple(Target, target), now))

    def _renewable(self, claims: Claims, lifetime: int) -> bool:
        """A CAT asking for renewal (catr) lives up to PLAYGATE_MAX_SESSION from its start, as a
        playback session does: its renewals keep nbf, and the edge caps them there."""
        if not isinstance(claims, CatClaims) or claims.rules.renewal is None:
            return False
        return lifetime <= self.max_session

    def _judge_cat(self, claims: Claims, path: str, client: Client, now: float) -> None:
        assert self.cat is not None
        assert isinstance(claims, CatClaims)
        # Issued before its nbf: not_before (checked above) is its iat; it plays from nbf.
        if now + self.leeway < claims.rules.starts_at:
            raise NotYetValid("the token is not valid yet", token_id=claims.token_id)
        self.cat.judge(claims, path, client)


def _forget_oldest(memo: dict[str, Claims], size: int) -> None:
    """Drop the oldest eighth of a full memo (at least one entry), oldest first.

    In batches because a dict leaves a hole where an entry was deleted, which its iterator
    walks past until the next resize: dropping one entry per new token would walk all the
    earlier holes each time. An eighth at a time it is one walk per ``size / 8`` tokens.
    """
    for token in list(islice(memo, max(1, size >> 3))):
        del memo[token]


def verify(
    token: str | None,
    path: str,
    client_ip: str | None,
    now: float,
    keyring: KeyRing,
    *,
    leeway: int = DEFAULT_LEEWAY,
    max_ttl: int = DEFAULT_MAX_TTL,
) -> Grant:
    """Decide whether ``token`` lets ``client_ip`` fetch the raw ``path`` at time ``now``.

    One call, nothing remembered: long-running adapters keep a ``Verifier`` instead.
    """
    verifier = Verifier(keyring, max_ttl=max_ttl, leeway=leeway, memo_size=0)
    return verifier.judge(Target(token, path, "", False), client_ip, now)


def verify_target(
    target: str,
    client_ip: str | None,
    now: float,
    keyring: KeyRing,
    *,
    leeway: int = DEFAULT_LEEWAY,
    max_ttl: int = DEFAULT_MAX_TTL,
) -> Grant:
    """Split a raw request target and verify it; the grant carries the query without the token."""
    verifier = Verifier(keyring, max_ttl=max_ttl, leeway=leeway, memo_size=0)
    return verifier.verify_target(target, client_ip, now)
