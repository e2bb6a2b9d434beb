"""The wire contract shared by the validator, Lambda@Edge and the nginx edge template.

Written once here: the nginx template is rendered from these values (``playgate.nginx``), and a
test checks that the rendered file and the Python adapters agree.
"""

from __future__ import annotations

# Where the token travels: the first path segments ``/t/<token>/``, or one query parameter.
TOKEN_PREFIX = "/t/"
TOKEN_PARAM = "token"
# A playback session's token, which the edge mints from a start token (TOKEN_FORMAT.md): its own
# prefix and parameter, so an edge routes it without decoding it. The carriage selects the MAC
# context a token is verified under, so a token in the wrong place fails its MAC.
SESSION_PREFIX = "/s/"
SESSION_PARAM = "session"
# Every token character is base64url; nothing else can appear in one, so none needs escaping.
TOKEN_CHARS = "A-Za-z0-9_-"
# Where CTA-5007 Common Access Tokens also travel: a request header, and a query parameter
# (the spelling Akamai's CAT module uses; @eyevinn/cat defaults to lower-case "cat", which
# is refused as ambiguous like "Token": docs/cat.md).
CAT_HEADER = "CTA-Common-Access-Token"
CAT_PARAM = "CAT"
# What became of a CAT's catr renewal on this response: the kind given, or "refused; <code>".
RENEWAL_HEADER = "X-PlayGate-Renewal"
MAX_TOKEN_CHARS = 2048
# The shortest v1 token: a version byte, one claim byte and the 32-byte MAC, in base64url. Log
# filters rely on it: a run of token characters shorter than this cannot be a token.
SHORTEST_TOKEN_CHARS = 46
# The edge's access log writes a path only when every segment is plain and this short.
LOGGED_SEGMENT_CHARS = 40

# Response headers the validator sets, and the request header nginx's auth_request sends.
REASON_HEADER = "X-PlayGate-Reason"
TOKEN_ID_HEADER = "X-PlayGate-Token-Id"
ORIGINAL_URI_HEADER = "X-Original-URI"
# The one forwarding header the validator reads from a trusted proxy: one of these.
FORWARDED_FOR = "x-forwarded-for"
REAL_IP = "x-real-ip"
CLIENT_IP_HEADERS = (FORWARDED_FOR, REAL_IP)

# The validator's nginx auth_request endpoint.
AUTH_ROUTE = "/auth"
# The feed nginx's native verifier polls for revocations and policy (edge_validator/feed.py),
# and the header that authenticates a poll: "<key id>.<unix seconds>.<hex MAC>".
NATIVE_FEED_ROUTE = "/_playgate/native-feed"
FEED_AUTH_HEADER = "X-PlayGate-Feed-Auth"
# Manifests, which query-token mode rewrites (lower-case suffixes, compared case-insensitively).
MANIFEST_SUFFIXES = (".m3u8", ".mpd")
# Denials, and anything else that must never be stored by a cache.
NO_STORE = "no-store"
# Allowed manifests: a live playlist changes every segment, so a browser revalidates each time.
MANIFEST_CACHE = "private, no-cache"


def is_manifest(path: str) -> bool:
    return path.lower().endswith(MANIFEST_SUFFIXES)


def nginx_variable(header: str) -> str:
    """The nginx variable of an upstream response header: ``$upstream_http_x_playgate_reason``."""
    return "$upstream_http_" + header.lower().replace("-", "_")
