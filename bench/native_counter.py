"""What counting one native decision costs: the shared-dict incr of playgate_metrics.lua.

A real nginx (one worker, the same Lua modules as the edge) runs, in one request, alternating
rounds of: an empty loop, the decision counter (``playgate_metrics.allowed()``: one atomic
``incr`` on the shared dict), and a deny counted by reason (a table lookup, then the incr).
Each round is ``--calls`` calls; the figure is nanoseconds per call above the empty loop,
median over rounds. Compare it with the nginx CPU per request of the edge benchmark
(docs/performance.md: tens of microseconds).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
from pathlib import Path

import httpx

from playgate.nginx.config import LUA_DIR, NATIVE_MODULE_DIR, NATIVE_MODULES
from playgate.processes import LOOPBACK, free_port, require_tool, stop_process, wait_for_port

CONF = """
{modules}
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log stderr error;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp;
    proxy_temp_path {prefix}/tmp;
    fastcgi_temp_path {prefix}/tmp;
    uwsgi_temp_path {prefix}/tmp;
    scgi_temp_path {prefix}/tmp;
    lua_package_path "{lua_dir}/?.lua;;";
    lua_shared_dict playgate_metrics 1m;
    init_by_lua_block {{ require("playgate_metrics").init("playgate_metrics") }}
    server {{
        listen {listen};
        location = /run {{
            content_by_lua_block {{
                local metrics = require("playgate_metrics")
                local calls = tonumber(ngx.var.arg_calls)
                local function timed(f)
                    ngx.update_time()
                    local t0 = ngx.now()
                    f(calls)
                    ngx.update_time()
                    return ngx.now() - t0
                end
                local kinds = {{
                    empty = function(n) for _ = 1, n do end end,
                    allow = function(n) for _ = 1, n do metrics.allowed() end end,
                    deny = function(n) for _ = 1, n do metrics.denied("expired") end end,
                }}
                local out = {{}}
                for round = 1, tonumber(ngx.var.arg_rounds) do
                    for _, kind in ipairs({{ "empty", "allow", "deny" }}) do
                        out[#out + 1] = kind .. " " .. string.format("%.6f", timed(kinds[kind]))
                    end
                end
                ngx.print(table.concat(out, "\\n"))
            }}
        }}
    }}
}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    nginx = require_tool("nginx")
    with tempfile.TemporaryDirectory(prefix="playgate-counter-") as tmp:
        prefix = Path(tmp)
        (prefix / "tmp").mkdir()
        port = free_port()
        modules = "".join(f"load_module {NATIVE_MODULE_DIR / m};\n" for m in NATIVE_MODULES)
        conf = prefix / "nginx.conf"
        conf.write_text(
            CONF.format(
                modules=modules, prefix=prefix, lua_dir=LUA_DIR, listen=f"{LOOPBACK}:{port}"
            )
        )
        proc = subprocess.Popen([nginx, "-p", str(prefix), "-c", str(conf), "-e", "stderr"])
        try:
            wait_for_port(port, proc=proc)
            resp = httpx.get(
                f"http://{LOOPBACK}:{port}/run",
                params={"calls": args.calls, "rounds": args.rounds},
                timeout=600,
            )
            resp.raise_for_status()
        finally:
            stop_process(proc)
    seconds: dict[str, list[float]] = {"empty": [], "allow": [], "deny": []}
    for line in resp.text.splitlines():
        kind, value = line.split()
        seconds[kind].append(float(value))
    empty = statistics.median(seconds["empty"])
    for kind in ("allow", "deny"):
        each = [(s - empty) / args.calls * 1e9 for s in seconds[kind]]
        print(
            f"{kind}: {statistics.median(each):.1f} ns per counted decision "
            f"(min {min(each):.1f}, max {max(each):.1f}; {args.rounds} rounds of {args.calls})"
        )


if __name__ == "__main__":
    main()
