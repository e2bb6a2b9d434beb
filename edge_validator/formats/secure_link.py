"""nginx ``secure_link_md5``: emitted for the nginx fleets that already run it, verified too.

nginx checks ``base64url(MD5(expression)) == $md5`` and ``$secure_link_expires`` against its
clock; the expression is whatever the operator wrote in ``secure_link_md5``. Two layouts:

- ``file``, nginx's documented example: ``<path>?md5=<m>&expires=<e>`` over
  ``"$secure_link_expires$uri$remote_addr <secret>"``. One file per URL; a player's relative
  segment requests carry no query, so this fits a download, not HLS or DASH.
- ``scope``, PlayGate's layout for video: ``/sl/<m>/<e>/videos/<id>/<file>`` over
  ``"<e>/videos/<id>/[<addr>] <secret>"``. Relative URIs resolve under the token prefix, so every
  segment carries it, and the hash covers the video scope, not one file. ``NGINX_LOCATION``
  below is the matching nginx configuration.

Why PlayGate's own format is safer (docs/formats.md): MD5 with the secret appended is a
128-bit hash whose collisions are cheap, the fields are concatenated without delimiters, the
token names no key (rotation means trying every secret), carries no token id (no revocation, no
log line naming it), no start time and binds to one address only, and the secret sits in every
edge's configuration. Emit it for compatibility; prefer PlayGate tokens where the edge runs
PlayGate.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
from dataclasses import dataclass

from ..core.errors import BadPath, BadSignature, ConfigurationError, MalformedToken, MissingToken
from ..core.paths import normalize_path
from .policy import Access, Policy, video_scope

FORMAT = "secure_link"
PREFIX = "/sl/"
MIN_SECRET_CHARS = 32
# The secret is written into nginx's configuration: nothing that could end the directive.
SECRET_RE = re.compile(r"[A-Za-z0-9_-]{32,256}")
_MD5_RE = re.compile(r"[A-Za-z0-9_-]{21}[AQgw]")  # 16 bytes, canonical base64url
_EXPIRES_RE = re.compile(r"[1-9][0-9]{0,10}")
# The nginx side of the ``scope`` layout. nginx matches the location against its normalized,
# decoded $uri, so what it hashes is what it serves; PlayGate's verify() refuses ambiguous raw
# paths outright. The regex is quoted in the config: nginx would read its '{' as a block.
NGINX_LOCATION_RE = (
    "^/sl/(?<sl_md5>[A-Za-z0-9_-]{22})/(?<sl_expires>[1-9][0-9]{0,10})"
    "(?<sl_path>(?<sl_scope>/videos/[A-Za-z0-9_-]{1,128}/)[^?]+)$"
)
NGINX_LOCATION = """
location ~ "%(regex)s" {
    secure_link $sl_md5,$sl_expires;
    secure_link_md5 "$secure_link_expires$sl_scope%(client)s %(secret)s";
    if ($secure_link = "") { return 403; }
    if ($secure_link = "0") { return 410; }
    %(serve)s
}
"""


@dataclass(frozen=True, repr=False)
class SecureLinkKey:
    """One ``secure_link_md5`` secret, and whether its expression includes ``$remote_addr``."""

    key_id: str
    secret: str
    bind_client: bool = False

    def __post_init__(self) -> None:
        if not SECRET_RE.fullmatch(self.secret):
            raise ConfigurationError(
                f"secure_link secret {self.key_id!r}: {MIN_SECRET_CHARS}-256 characters of "
                "A-Z a-z 0-9 _ - (it is written into nginx's configuration)"
            )

    def __repr__(self) -> str:
        return f"SecureLinkKey({self.key_id!r}, bind_client={self.bind_client})"

    def nginx_location(self, serve: str) -> str:
        """The nginx ``location`` that verifies this key's ``scope`` URLs, then ``serve``s."""
        client = "$remote_addr" if self.bind_client else ""
        values = {"regex": NGINX_LOCATION_RE, "client": client, "secret": self.secret}
        return NGINX_LOCATION % {**values, "serve": serve}


def digest(expression: str) -> str:
    """``base64url(MD5(expression))`` without padding: what nginx compares ``$md5`` with."""
    raw = hashlib.md5(expression.encode("ascii"), usedforsecurity=False).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def file_url(path: str, expires: int, secret: str, client_ip: str | None = None) -> str:
    """nginx's documented ``file`` layout: ``secure_link_md5 "$secure_link_expires$uri$remote_addr
    secret"`` (drop ``client_ip`` when the expression has no ``$remote_addr``)."""
    md5 = digest(f"{expires}{path}{client_ip or ''} {secret}")
    return f"{path}?md5={md5}&expires={expires}"


def emit(policy: Policy, key: SecureLinkKey) -> str:
    """The entry URL path (``scope`` layout) for ``policy``; prepend the edge's origin."""
    client = policy.client_address() if key.bind_client else None
    if policy.client_network is not None and not key.bind_client:
        raise ValueError("this secure_link key does not bind to a client address")
    if client is None and key.bind_client:
        raise ValueError("this secure_link key needs a client address")
    md5 = digest(f"{policy.expires_at}{policy.scope}{client or ''} {key.secret}")
    return f"{PREFIX}{md5}/{policy.expires_at}{policy.entry_path}"


def split(raw_target_path: str) -> tuple[str, int, str]:
    """``(md5, expires, raw path)`` of a ``scope`` layout path, else a PlaybackTokenError."""
    if not raw_target_path.startswith(PREFIX):
        raise MissingToken("no secure_link prefix")
    md5, slash, rest = raw_target_path[len(PREFIX) :].partition("/")
    expires, slash2, path = rest.partition("/")
    if not slash or not slash2:
        raise MalformedToken("truncated secure_link path")
    if not _MD5_RE.fullmatch(md5) or not _EXPIRES_RE.fullmatch(expires):
        raise MalformedToken("not a secure_link md5 and expiry")
    return md5, int(expires), "/" + path


def verify(raw_target_path: str, client: str | None, keys: tuple[SecureLinkKey, ...]) -> Access:
    """Authenticate a ``scope`` layout path; the caller judges the access (``policy.judge``).

    ``raw_target_path`` is the request path as received, without the query.
    """
    md5, expires, path = split(raw_target_path)
    scope = video_scope(normalize_path(path))
    for key in keys:
        address = client if key.bind_client else ""
        if key.bind_client and not address:
            continue
        expected = digest(f"{expires}{scope}{address} {key.secret}")
        if hmac.compare_digest(expected, md5):
            network = None
            if key.bind_client and address:
                network = _host_network(address)
            # No start time, no token id: nginx's format carries neither.
            return Access(FORMAT, key.key_id, expires, 0, scope, False, None, None, network)
    raise BadSignature("secure_link md5 mismatch")


def _host_network(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise BadPath("unparseable client address") from None
    return f"{ip}/{ip.max_prefixlen}"
