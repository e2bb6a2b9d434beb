"""The native verifier's fast path: ``module/ngx_http_playgate_module.c`` built as an nginx
dynamic module for the nginx installed here.

nginx loads a dynamic module only when it was built from the same nginx version with the same
compatibility flags: Debian's ``nginx-dev`` ships that source tree and the flags
(``/usr/share/nginx/src``, ``conf_flags``). The build takes a few seconds and is kept in the
user's cache, one file per checkout, rebuilt when the module source, nginx's version or its
flags change. Nothing here runs at import.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from edge_validator.core.errors import ConfigurationError

SOURCE = Path(__file__).resolve().parent / "module"
NGINX_SOURCE = Path("/usr/share/nginx/src")
MODULE = "ngx_http_playgate_module.so"
FAST_HINT = (
    "the native fast path is built against nginx-dev: run `sudo apt-get install nginx-dev gcc "
    "make` (Debian/Ubuntu), or render with --no-fast"
)


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "playgate" / "nginx-module"


def _fingerprint(nginx: str) -> str:
    """What the built module depends on: the module source, nginx's version and build flags."""
    digest = hashlib.sha256()
    for path in sorted(SOURCE.iterdir()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    version = subprocess.run([nginx, "-v"], capture_output=True, text=True, check=False)
    digest.update(version.stderr.encode())
    digest.update((NGINX_SOURCE / "conf_flags").read_bytes())
    return digest.hexdigest()[:16]


def built(nginx: str = "nginx") -> Path:
    """The module for this nginx, built now if the cached one is not of this source and nginx.

    One path per checkout, whatever the build: a reload that named another file would load a
    second copy beside the running one, and the Lua verifier's FFI calls would still reach the
    first (unloaded with the old cycle). A rebuilt file replaces the old one under the same
    name; nginx keeps running the copy it loaded (a changed module needs a restart, not a
    reload)."""
    if not (NGINX_SOURCE / "configure").is_file() or not (NGINX_SOURCE / "conf_flags").is_file():
        raise ConfigurationError(FAST_HINT)
    if shutil.which("cc") is None or shutil.which("make") is None:
        raise ConfigurationError(FAST_HINT)
    checkout = hashlib.sha256(str(SOURCE).encode()).hexdigest()[:16]
    target = _cache_root() / checkout / MODULE
    stamp = target.with_name(f"{MODULE}.built")
    fingerprint = _fingerprint(nginx)
    if target.is_file() and stamp.is_file() and stamp.read_text() == fingerprint:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="playgate-module-") as scratch:
        tree = Path(scratch) / "nginx"
        shutil.copytree(NGINX_SOURCE, tree)
        # nginx's configure with Debian's flags (--with-compat among them), -O2 as Debian builds.
        script = (
            'source ./conf_flags && ./configure "${NGX_CONF_FLAGS[@]}" --with-cc-opt=-O2 '
            '--add-dynamic-module="$1" && make -f objs/Makefile modules'
        )
        done = subprocess.run(
            ["bash", "-c", script, "build", str(SOURCE)],
            cwd=tree,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
            raise ConfigurationError(f"building the nginx fast-path module failed:\n{tail}")
        # Renamed into place: a concurrent build of the same source never sees half a file.
        partial = target.with_name(f".{MODULE}.{os.getpid()}")
        shutil.copyfile(tree / "objs" / MODULE, partial)
        partial.replace(target)
    stamp.write_text(fingerprint)
    return target
