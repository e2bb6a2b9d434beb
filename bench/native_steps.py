"""What the native verifier's steps cost inside nginx (LuaJIT), next to what they replaced.

    .venv/bin/python -m bench.native_steps

Starts one nginx with the native verifier's module loaded (its FFI declarations) and runs each
step 200,000 times in a loop in a content handler, with the JIT on and off (a request handler
runs partly interpreted): microseconds per call. The steps: HMAC-SHA256 of a 120-byte body by
OpenSSL 3's one-shot ``HMAC()`` (what the verifier used) and from precomputed inner and outer
SHA-256 states (what it uses); the base64url alphabet check of a 140-character token by a Lua
character class (before) and by ``strspn`` (now); a whole ``decide`` of a session token.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from edge_validator.core.keyring import KeyRing, new_keyring_json
from playgate.nginx.config import LUA_DIR, NATIVE_MODULE_DIR, NATIVE_MODULES
from playgate.processes import LOOPBACK, free_port, require_tool, stop_process

from .edge import VIDEO, make_viewers

CONF = """
{modules}
daemon off;
master_process off;
pid {prefix}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 16; }}
http {{
    client_body_temp_path {prefix}/tmp; proxy_temp_path {prefix}/tmp;
    fastcgi_temp_path {prefix}/tmp; uwsgi_temp_path {prefix}/tmp; scgi_temp_path {prefix}/tmp;
    access_log off;
    lua_package_path "{lua_dir}/?.lua;;";
    lua_shared_dict playgate_native 1m;
    lua_shared_dict playgate_native_meta 1m;
    init_by_lua_block {{
        require("playgate_native").init({{ keyring_file = "{keyring}", dict = "playgate_native",
            meta_dict = "playgate_native_meta", validators = {{}}, auth_location = "/x" }})
    }}
    server {{
        listen {listen};
        location = /steps {{ content_by_lua_file {prefix}/steps.lua; }}
    }}
}}
"""

STEPS = r"""
local ffi = require("ffi")
local native = require("playgate_native")
local C = ffi.C
pcall(ffi.cdef, [[
typedef struct evp_md_st EVP_MD;
const EVP_MD *EVP_sha256(void);
unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len,
                    const unsigned char *d, size_t n, unsigned char *md, unsigned int *md_len);
]])
local SHA256 = C.EVP_sha256()
local out, len = ffi.new("unsigned char[32]"), ffi.new("unsigned int[1]")
local key, body = string.rep("k", 32), string.rep("d", 120)
local inner, outer = ffi.new("playgate_sha256_ctx"), ffi.new("playgate_sha256_ctx")
local ctx = ffi.new("playgate_sha256_ctx")
C.SHA256_Init(inner); C.SHA256_Update(inner, string.rep("\54", 64), 64)
C.SHA256_Init(outer); C.SHA256_Update(outer, string.rep("\92", 64), 64)
local size = ffi.sizeof(ctx)
local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local target = ngx.unescape_uri(ngx.var.arg_target)
local token = target:match("^/s/([^/]+)")
local policy = { leeway = 5, max_ttl = 3600, max_session = 43200 }
local dict = ngx.shared.playgate_native
local steps = {
    { "HMAC() one-shot (before)", function()
        C.HMAC(SHA256, key, 32, body, 120, out, len) end },
    { "HMAC from precomputed states (now)", function()
        ffi.copy(ctx, inner, size); C.SHA256_Update(ctx, body, 120); C.SHA256_Final(out, ctx)
        ffi.copy(ctx, outer, size); C.SHA256_Update(ctx, out, 32); C.SHA256_Final(out, ctx)
    end },
    { "alphabet check, Lua class (before)", function()
        return token:find("[^A-Za-z0-9_-]") end },
    { "alphabet check, strspn (now)", function() return C.strspn(token, alphabet) end },
    { "decide, session token (now)", function()
        local verdict = native.decide(target, "127.0.0.1", ngx.now(), policy, dict)
        assert(verdict == "allow", verdict)
    end },
}
local n = 200000
for _, step in ipairs(steps) do
    local row = { step[1] }
    for _, mode in ipairs({ "on", "off" }) do
        if mode == "on" then jit.on() else jit.off() end
        local started = os.clock()
        for _ = 1, n do step[2]() end
        row[#row + 1] = string.format("%.3f", (os.clock() - started) * 1e6 / n)
    end
    jit.on()
    ngx.say("| ", table.concat(row, " | "), " |")
end
"""


def main() -> int:
    nginx = require_tool("nginx")
    work = Path(tempfile.mkdtemp(prefix="playgate-native-steps-"))
    proc = None
    try:
        (work / "tmp").mkdir()
        keyring_json = new_keyring_json("bench1")
        (work / "keyring.json").write_text(keyring_json)
        viewer = make_viewers(KeyRing.from_json(keyring_json), 1, time.time())[0]
        port = free_port()
        modules = "".join(f"load_module {NATIVE_MODULE_DIR / m};\n" for m in NATIVE_MODULES)
        (work / "steps.lua").write_text(STEPS)
        (work / "nginx.conf").write_text(
            CONF.format(
                modules=modules,
                prefix=work,
                lua_dir=LUA_DIR,
                keyring=work / "keyring.json",
                listen=f"{LOOPBACK}:{port}",
            )
        )
        argv = [nginx, "-p", str(work), "-c", str(work / "nginx.conf"), "-e", "stderr"]
        proc = subprocess.Popen(argv)
        target = f"/s/{viewer.session}/videos/{VIDEO}/v0/seg_000.ts"
        deadline = time.monotonic() + 10
        while True:
            try:
                resp = httpx.get(
                    f"http://{LOOPBACK}:{port}/steps", params={"target": target}, timeout=120
                )
                break
            except httpx.ConnectError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        resp.raise_for_status()
        print("µs per call, 200,000 calls\n")
        print("| step | JIT on | JIT off |\n|---|---:|---:|")
        print(resp.text, end="")
        return 0
    finally:
        stop_process(proc)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
