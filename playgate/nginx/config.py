"""The nginx edge config: ``edge.conf.template`` rendered with the operator's values and the
validator's wire contract (``edge_validator.core.protocol``), and nginx run from a prefix.

Rendering is pure string work: every operator value is checked so that it cannot break out of
its directive (no spaces, quotes, braces or semicolons), then substituted for ``{{name}}``.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from edge_validator.core import protocol
from edge_validator.core.cors import ALLOWED_HEADERS, EXPOSED_HEADERS, CorsPolicy
from edge_validator.core.errors import ConfigurationError
from edge_validator.core.keyring import KeyRing

TEMPLATE = Path(__file__).resolve().parent / "edge.conf.template"
# The native verifier (ngx_http_lua, Debian's libnginx-mod-http-lua and lua-cjson).
LUA_DIR = Path(__file__).resolve().parent / "lua"
NATIVE_MODULES = ("ndk_http_module.so", "ngx_http_lua_module.so")
NATIVE_MODULE_DIR = Path("/usr/lib/nginx/modules")
NATIVE_HINT = (
    "the native verifier needs ngx_http_lua: run `sudo apt-get install libnginx-mod-http-lua "
    "lua-cjson` (Debian/Ubuntu), or render with --no-native"
)
_NATIVE_DICT_RE = re.compile(r"[1-9][0-9]{0,5}[km]")
MAX_MEMO_SLOTS = 1 << 24
INSTALL_HINT = "nginx is not installed: run `sudo apt-get install nginx-light` (Debian/Ubuntu)"
_PLACEHOLDER = re.compile(r"\{\{([a-z_]+)\}\}")
_SAFE_VALUE = re.compile(r"[A-Za-z0-9_./:\-\[\]]+")
_TEMP_DIRS = ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi", "cache")


def _host_port(url: str, name: str) -> str:
    """``host:port`` of a plain http URL (nginx upstreams speak HTTP to loopback or a VPC)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/"):
        raise ConfigurationError(f"{name} must look like http://host:port")
    if parts.query or parts.fragment or parts.username:
        raise ConfigurationError(f"{name} must look like http://host:port")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{parts.port or 80}"


@dataclass(frozen=True)
class EdgeConfig:
    """What the edge template needs. ``listen`` is nginx syntax: ``127.0.0.1:8088`` or ``80``."""

    listen: str
    validator_url: str
    origin_url: str
    prefix: Path
    workers: str = "auto"
    daemon: bool = False
    access_log: str | None = None
    media_cache_time: str = "10m"
    cache_max_size: str = "1g"
    user: str | None = None
    # PLAYGATE_CORS_ORIGINS, as the validator reads it: the same policy at both.
    cors: CorsPolicy = field(default_factory=CorsPolicy)
    # More validators beside ``validator_url``: nginx spreads checks over all of them and
    # retries a check on the next when one is down or restarting.
    more_validator_urls: tuple[str, ...] = ()
    # HTTPS: certificate chain and private key (PEM files nginx reads at start).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # The native verifier: nginx decides PlayGate tokens itself, reading this key ring file
    # (the validator's PLAYGATE_KEYRING_FILE). None, or native=False: every request goes to
    # the validator through auth_request.
    keyring_file: Path | None = None
    native: bool = True
    # Where nginx serves the native verifier's counts (/metrics, Prometheus text format), or
    # None. An admin address: a port of its own, never the viewers' (docs/nginx.md#metrics).
    metrics_listen: str | None = None
    # Shared memory for the revocations nginx holds (when full, nginx stops deciding natively
    # rather than forget one); only the pages in use take memory.
    native_dict_size: str = "256m"
    # Authentic tokens each worker remembers, so a viewer's next segment skips the MAC (a
    # power of two, 0 for none; 240 bytes each, per worker): about twice the live viewers one
    # worker serves. 262,144 slots (60 MB a worker, sets of two) keep 4 in 5 of 100,000 viewers.
    native_memo_slots: int = 262_144
    # The native verifier's fast path: the built ngx_http_playgate_module.so (fast_module.py),
    # which allows the common request in C before the Lua verifier runs; None: Lua decides all.
    fast_module: Path | None = None

    @property
    def native_active(self) -> bool:
        return self.native and self.keyring_file is not None

    def validator_addrs(self) -> list[str]:
        urls = (self.validator_url, *self.more_validator_urls)
        return [_host_port(url, "validator URL") for url in urls]

    def values(self) -> dict[str, str]:
        return {
            "listen": self.listen,
            "origin_addr": _host_port(self.origin_url, "origin URL"),
            "prefix": str(self.prefix.resolve()),
            "workers": self.workers,
            "daemon": "on" if self.daemon else "off",
            "access_log": self.access_log or str(self.prefix.resolve() / "access.log"),
            "media_cache_time": self.media_cache_time,
            "cache_max_size": self.cache_max_size,
        }


_USER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")


def contract_values() -> dict[str, str]:
    """The validator's wire contract, as the template needs it (constants, never user input)."""
    suffixes = "|".join(s.lstrip(".") for s in protocol.MANIFEST_SUFFIXES)
    return {
        "token_prefix": protocol.TOKEN_PREFIX,
        "token_param": protocol.TOKEN_PARAM,
        "any_prefix_re": f"(?:{protocol.TOKEN_PREFIX}|{protocol.SESSION_PREFIX})",
        "manifest_suffix_re": f"(?:{suffixes})",
        "auth_route": protocol.AUTH_ROUTE,
        "manifest_cache": protocol.MANIFEST_CACHE,
        "reason_header": protocol.REASON_HEADER,
        "reason_var": protocol.nginx_variable(protocol.REASON_HEADER),
        "token_id_var": protocol.nginx_variable(protocol.TOKEN_ID_HEADER),
        "original_uri_header": protocol.ORIGINAL_URI_HEADER,
        "cat_header": protocol.CAT_HEADER,
        "cat_header_var": "$http_" + protocol.CAT_HEADER.lower().replace("-", "_"),
        "cat_header_upstream_var": protocol.nginx_variable(protocol.CAT_HEADER),
        "renewal_header": protocol.RENEWAL_HEADER,
        "renewal_var": protocol.nginx_variable(protocol.RENEWAL_HEADER),
        "logged_segment_chars": str(protocol.LOGGED_SEGMENT_CHARS),
    }


def cors_values(cors: CorsPolicy) -> dict[str, str]:
    """The CORS map entries; origins are already checked to hold no character nginx parses."""
    lines = ['        default "*";' if cors.any_origin else '        default "";']
    if not cors.any_origin:
        lines += [f'        "{origin}" $http_origin;' for origin in cors.origins]
    # The media location's CORS headers, which every request evaluates: left out when they
    # would be empty on every request (an empty value sends no header), so CORS off costs none.
    media = []
    if cors.enabled:
        media += [
            "add_header Access-Control-Allow-Origin $pg_cors_origin always;",
            "add_header Access-Control-Expose-Headers $pg_cors_expose always;",
        ]
        if not cors.any_origin:
            media.append("add_header Vary Origin always;")
    if not media:
        media.append("# no CORS headers: PLAYGATE_CORS_ORIGINS is empty")
    return {
        "cors_origin_map": "\n".join(lines),
        "cors_media_headers": "\n".join(f"            {line}" for line in media),
        "cors_expose": ", ".join(EXPOSED_HEADERS),
        "cors_headers_re": "(?:" + "|".join(re.escape(h) for h in ALLOWED_HEADERS) + ")",
        # A reflected origin varies by request; "*" and "no CORS" do not.
        "cors_vary": "Origin" if cors.enabled and not cors.any_origin else '""',
        "cors_max_age": str(cors.max_age),
    }


def tls_values(config: EdgeConfig) -> dict[str, str]:
    """``listen ... ssl`` and the certificate lines, or nothing (plain HTTP)."""
    if config.tls_cert is None or config.tls_key is None:
        return {"listen_ssl": "", "tls_directives": "        # plain HTTP (no --tls-cert)"}
    lines = [
        f"ssl_certificate {config.tls_cert.resolve()};",
        f"ssl_certificate_key {config.tls_key.resolve()};",
        "ssl_protocols TLSv1.2 TLSv1.3;",
        "ssl_session_cache shared:playgate_tls:10m;",
        "ssl_session_timeout 1h;",
    ]
    return {"listen_ssl": " ssl", "tls_directives": "\n".join(f"        {x}" for x in lines)}


_AUTH_REQUEST = """\
            auth_request /_playgate/auth;
            auth_request_set $pg_token_id {token_id_var};
            auth_request_set $pg_reason {reason_var};
            auth_request_set $pg_cat_renewed {cat_header_upstream_var};
            auth_request_set $pg_cat_cookie $upstream_http_set_cookie;
            auth_request_set $pg_renewal {renewal_var};"""
_NATIVE_ACCESS = """\
            # The native verifier decides, or asks the validator (/_playgate/auth) as
            # auth_request would: 2xx allows, 401/403 deny with its reason, else 503.
{fast}            access_by_lua_block {{ require("playgate_native").access() }}"""
# What the access check sets starts empty on every request (the fast path's module defines
# these variables empty instead, at no cost per request).
_CHECK_VARIABLES = """\
            set $pg_token_id "";
            set $pg_reason "";
            set $pg_cat_renewed "";
            set $pg_cat_cookie "";
            set $pg_renewal "";
"""
_FAST = """\
            # The common allow, decided in C first (ngx_http_playgate_module.c): it allows or
            # declines, and the Lua verifier below decides what it declined.
            playgate_fast on;
            playgate_fast_logged_segment_chars {logged_segment_chars};
"""
# The response headers the access check fills (each sent only when not empty, always).
_CHECK_HEADERS = (
    ("{reason_header}", "$pg_reason"),
    ("{cat_header}", "$pg_cat_renewed"),
    ("Set-Cookie", "$pg_cat_cookie"),
    ("{renewal_header}", "$pg_renewal"),
)


def check_headers(contract: dict[str, str], fast: bool) -> str:
    """add_header lines, or the fast path's own directive (no script per header)."""
    directive = "playgate_fast_header {} {};" if fast else "add_header {} {} always;"
    return "\n".join(
        "            " + directive.format(name.format(**contract), var)
        for name, var in _CHECK_HEADERS
    )


_NATIVE_OPEN = """\
            # A start token that needs no shared state opens its playback session here (the
            # same 302 the shield answers); anything else goes on to the shield.
            access_by_lua_block { require("playgate_native").open_session() }
"""
_NATIVE_HTTP = """\
    # --- The native verifier (playgate/nginx/lua/playgate_native.lua) ----------------------
    # PlayGate tokens are checked here, in every worker; worker 0 polls the validators'
    # revocation feed ({feed_route}) into this shared dict several times a second.
    lua_package_path "{lua_dir}/?.lua;;";
    lua_shared_dict playgate_native {dict_size};
    lua_shared_dict playgate_native_meta 1m;
    # What nginx decided itself, counted for Prometheus (playgate_metrics.lua, --metrics-listen).
    lua_shared_dict playgate_metrics 1m;
    # The poller says itself when the feed is lost and back, not one line per failed poll.
    lua_socket_log_errors off;
    init_by_lua_block {{
        require("playgate_native").init({{
            keyring_file = "{keyring_file}",
            dict = "playgate_native",
            meta_dict = "playgate_native_meta",
            metrics_dict = "playgate_metrics",
            validators = {{ {validators} }},
            auth_location = "/_playgate/auth",
            manifest_suffixes = "{manifest_suffixes}",
            memo_slots = {memo_slots},
            text_address = {text_address},
        }})
    }}
    init_worker_by_lua_block {{ require("playgate_native").init_worker() }}
"""


def native_values(config: EdgeConfig, contract: dict[str, str]) -> dict[str, str]:
    """The native verifier's lines, or auth_request's when it is off."""
    if not config.native_active:
        if config.metrics_listen is not None:
            # Without the native verifier the validators decide, and count, every request.
            raise ConfigurationError(
                "--metrics-listen serves the native verifier's counts: give a key ring file "
                "(and no --no-native), or scrape the validators' /metrics alone"
            )
        return {
            "native_modules": "",
            "native_http": "",
            "access_check": _AUTH_REQUEST.format(**contract),
            "check_headers": check_headers(contract, False),
            "native_open": "",
            "metrics_server": "",
        }
    assert config.keyring_file is not None
    keyring_file = str(config.keyring_file.resolve())
    if not _SAFE_VALUE.fullmatch(keyring_file):
        raise ConfigurationError(f"key ring file {keyring_file!r} has characters nginx would parse")
    if not _NATIVE_DICT_RE.fullmatch(config.native_dict_size):
        raise ConfigurationError("the native dict size looks like 64m")
    slots = config.native_memo_slots
    # type(): True is an int too, and would render as no Lua number.
    if (
        type(slots) is not int
        or not 0 <= slots <= MAX_MEMO_SLOTS
        or slots & (slots - 1)
        or slots == 1
    ):
        raise ConfigurationError(
            f"native_memo_slots is a power of two from 2 to {MAX_MEMO_SLOTS:,} (or 0 for none)"
        )
    modules = "".join(f"load_module {NATIVE_MODULE_DIR / m};\n" for m in NATIVE_MODULES)
    fast = config.fast_module
    if fast is not None:
        if not _SAFE_VALUE.fullmatch(str(fast)):
            raise ConfigurationError(f"fast module {str(fast)!r} has characters nginx would parse")
        # After ngx_http_lua: the module calls its shared-dict read, and its access handler,
        # registered last, runs first.
        modules += f"load_module {fast};\n"
    validators = ", ".join(f'"{addr}"' for addr in config.validator_addrs())
    return {
        "native_modules": modules,
        "native_http": _NATIVE_HTTP.format(
            feed_route=protocol.NATIVE_FEED_ROUTE,
            lua_dir=LUA_DIR,
            dict_size=config.native_dict_size,
            keyring_file=keyring_file,
            validators=validators,
            manifest_suffixes=",".join(protocol.MANIFEST_SUFFIXES),
            memo_slots=slots,
            # On a UNIX socket $binary_remote_addr is the peer's path: the verifier reads the
            # address as text there.
            text_address="true" if config.listen.startswith("unix:") else "false",
        ),
        "access_check": _NATIVE_ACCESS.format(
            fast=_FAST.format(logged_segment_chars=protocol.LOGGED_SEGMENT_CHARS)
            if fast is not None
            else _CHECK_VARIABLES
        ),
        "check_headers": check_headers(contract, fast is not None),
        "native_open": _NATIVE_OPEN,
        "metrics_server": metrics_server(config.metrics_listen),
    }


_METRICS_SERVER = """
    # The native verifier's counts for Prometheus, on the admin address (--metrics-listen):
    # what nginx decided itself; the validators' /metrics count what reached them.
    server {{
        listen {listen};
        access_log off;
        location = /metrics {{
            limit_except GET {{ deny all; }}
            content_by_lua_block {{ require("playgate_native").expose_metrics() }}
        }}
        location / {{
            return 404;
        }}
    }}
"""


def metrics_server(listen: str | None) -> str:
    """The admin server block that serves ``/metrics``, or nothing."""
    if listen is None:
        return ""
    if not _SAFE_VALUE.fullmatch(listen):
        raise ConfigurationError(
            f"nginx metrics listen {listen!r} has characters nginx would parse"
        )
    return _METRICS_SERVER.format(listen=listen)


def check_native(config: EdgeConfig) -> None:
    """Refuse to render a native edge that could not start: modules missing, bad key ring."""
    for module in NATIVE_MODULES:
        if not (NATIVE_MODULE_DIR / module).exists():
            raise ConfigurationError(NATIVE_HINT)
    assert config.keyring_file is not None
    KeyRing.from_file(config.keyring_file)  # the validators' own checks, at render time


def render(config: EdgeConfig, template: str | None = None) -> str:
    """The nginx.conf text for ``config``; refuses values that could inject directives."""
    operator = config.values()
    for name, value in operator.items():
        if not _SAFE_VALUE.fullmatch(value):
            raise ConfigurationError(f"nginx {name} {value!r} has characters nginx would parse")
    if (config.tls_cert is None) != (config.tls_key is None):
        raise ConfigurationError("give both --tls-cert and --tls-key, or neither")
    for path in (config.tls_cert, config.tls_key):
        if path is not None and not _SAFE_VALUE.fullmatch(str(path.resolve())):
            raise ConfigurationError(
                f"nginx TLS file {str(path)!r} has characters nginx would parse"
            )
    for addr in config.validator_addrs():
        if not _SAFE_VALUE.fullmatch(addr):
            raise ConfigurationError(f"nginx validator {addr!r} has characters nginx would parse")
    servers = "\n".join(
        # One failed check takes a validator out for 2 s; the check goes to the next one. In a
        # rolling restart, wait that long after a validator is back before stopping the next.
        f"        server {addr} max_fails=1 fail_timeout=2s;"
        for addr in config.validator_addrs()
    )
    contract = contract_values()
    values = {
        **contract,
        **native_values(config, contract),
        **cors_values(config.cors),
        "validator_servers": servers,
        **tls_values(config),
        **operator,
    }
    text = template if template is not None else TEMPLATE.read_text(encoding="utf-8")

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise ConfigurationError(f"the nginx template names an unknown value {name!r}")
        return values[name]

    rendered = _PLACEHOLDER.sub(substitute, text)
    if config.user:
        if not _USER_RE.fullmatch(config.user):
            raise ConfigurationError(f"nginx user {config.user!r} is not a user name")
        # A master running as root drops workers to this user; they must own the temp dirs.
        rendered = f"user {config.user};\n" + rendered
    return rendered


def nginx_binary() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


def make_prefix(config: EdgeConfig) -> None:
    """Create the prefix's temp and cache folders, which nginx needs before it starts."""
    for sub in _TEMP_DIRS:
        (config.prefix / sub).mkdir(parents=True, exist_ok=True)


def prepare_prefix(config: EdgeConfig) -> Path:
    """Create the prefix's temp and cache folders, write nginx.conf there, return its path."""
    make_prefix(config)
    conf = config.prefix / "nginx.conf"
    conf.write_text(render(config), encoding="utf-8")
    return conf


def current_user_if_root() -> str | None:
    """Workers of a root master would run as ``nobody`` and could not use a private prefix."""
    if os.geteuid() != 0:
        return None
    return pwd.getpwuid(os.geteuid()).pw_name


def nginx_argv(binary: str, config: EdgeConfig) -> list[str]:
    conf = config.prefix / "nginx.conf"
    return [binary, "-p", str(config.prefix.resolve()), "-c", str(conf.resolve()), "-e", "stderr"]


def check_config(binary: str, config: EdgeConfig) -> None:
    """``nginx -t`` on the rendered file; raises ConfigurationError with nginx's words."""
    result = subprocess.run(
        [*nginx_argv(binary, config), "-t", "-q"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise ConfigurationError(f"nginx rejected the config: {result.stderr.strip()}")
