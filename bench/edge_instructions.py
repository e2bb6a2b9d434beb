"""Edge cost in CPU instructions per request (valgrind callgrind), stable on a loaded machine.

    .venv/bin/python -m bench.edge_instructions --viewers 20000 100000 --configs secure_link native

The edge benchmark (bench/edge.py) times wall-clock rounds on a 2-core machine shared with other
work, where one run's ratio moves by 10-20 %. This runs the same edges, the same viewers and the
same wrk script, but each edge's nginx runs under callgrind with instrumentation off; after a
warm-up it is switched on in the nginx processes for one wrk run of ``--duration`` seconds and
the instructions they executed are divided by the requests in the access log over that run.
User-space instructions only (the kernel's TCP and sendfile work is not counted), repeatable
to about 1 %. ``--client`` also counts wrk's own instructions per request (wrk under callgrind,
a short and a long run, the difference), with callgrind's simulated last-level cache misses:
the client shares the machine with the edge, so what it costs must not grow with N.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edge_validator.core.keyring import KeyRing, new_keyring_json

from . import edge as E

WRAPPER = """#!/bin/sh
# nginx under callgrind, instrumentation off until callgrind_control -i on ("-t" runs plain).
case " $* " in *" -t "*) exec {nginx} "$@";; esac
exec valgrind --tool=callgrind --trace-children=yes --instr-atstart=no \\
    --callgrind-out-file={out}/nginx.%p {nginx} "$@"
"""


def children(master: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:
            out.append(int(entry))
    return out


def control(pid: int, *argv: str) -> None:
    subprocess.run(["callgrind_control", *argv, str(pid)], capture_output=True, check=False)


def summary(path: str) -> dict[str, int]:
    text = Path(path).read_text(errors="replace")
    events = re.search(r"^events: (.*)$", text, re.M)
    totals = re.search(r"^summary: (.*)$", text, re.M)
    if events is None or totals is None:
        return {}
    names, values = events.group(1).split(), [int(x) for x in totals.group(1).split()]
    return dict(zip(names, values, strict=True))


MODE = ["full"]  # "playing" with --playing: viewers already watching, as bench/edge.py


def wrk(base: str, urls: Path, n: int, offset: int, seconds: int, prefix: list[str]) -> int:
    argv = [*prefix, "wrk", "-t1", "-c16", f"-d{seconds}s", "-s", str(E.LUA), base,
            "--", str(urls), str(n), str(offset), MODE[0]]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    done = re.search(r"(\d+) requests in", out)
    if done is None or "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk failed or saw errors:\n{out}")
    return int(done.group(1))


def lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


def nginx_per_request(bench: E.Bench, name: str, edge: E.Edge, urls: Path, n: int,
                      offset: int, seconds: int) -> tuple[float, int]:  # fmt: skip
    """Instructions of the edge's nginx processes per request over one wrk run."""
    assert edge.nginx is not None
    kids = children(edge.nginx)
    for pid in kids:
        control(pid, "-z")
        control(pid, "-i", "on")
    log = bench.work / f"nginx-{name}" / "access.log"
    before = lines(log)
    done = wrk(edge.base, urls, n, offset, seconds, [])
    time.sleep(0.5)
    requests = lines(log) - before
    total = 0
    for pid in kids:
        old = set(glob.glob(f"{bench.work}/cg/nginx.{pid}.*"))
        control(pid, "-d")
        control(pid, "-i", "off")
        for dump in set(glob.glob(f"{bench.work}/cg/nginx.{pid}.*")) - old:
            total += summary(dump).get("Ir", 0)
    return total / max(requests, 1), done


def client_per_request(bench: E.Bench, edge: E.Edge, urls: Path, n: int, offset: int,
                       seconds: int) -> tuple[dict[str, float], int]:  # fmt: skip
    """wrk's instructions and simulated cache misses per request: a run of 5 + ``seconds`` less
    one of 5 s (wrk's start, reading the viewers, cancels out)."""
    runs = []
    for length in (5, 5 + seconds):
        out = bench.work / "cg" / f"wrk.{length}.{offset}"
        prefix = ["valgrind", "--tool=callgrind", "--cache-sim=yes", f"--callgrind-out-file={out}"]
        done = wrk(edge.base, urls, n, offset, length, prefix)
        offset += done
        runs.append((done, summary(str(out))))
    (r1, s1), (r2, s2) = runs
    return {k: (s2[k] - s1[k]) / (r2 - r1) for k in ("Ir", "DLmr", "DLmw")}, r1 + r2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--viewers", type=int, nargs="+", default=[20000, 100000])
    parser.add_argument(
        "--configs", nargs="+", choices=E.CONFIGS, default=["secure_link", "native"]
    )
    parser.add_argument("--duration", type=int, default=15, help="seconds of counted wrk run")
    parser.add_argument("--warmup", type=int, default=10, help="seconds of wrk run first")
    parser.add_argument("--client", action="store_true", help="count wrk's own instructions too")
    parser.add_argument("--keep", action="store_true", help="keep the callgrind dumps (printed)")
    parser.add_argument(
        "--playing",
        action="store_true",
        help="viewers already watching: leave out the request that opens playback",
    )
    args = parser.parse_args()
    MODE[0] = "playing" if args.playing else "full"
    for tool in ("nginx", "wrk", "ffmpeg", "valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            print(f"bench: {tool} is needed", file=sys.stderr)
            return 2
    nginx = shutil.which("nginx")
    assert nginx is not None
    root = Path(tempfile.mkdtemp(prefix="playgate-edge-instr-"))
    bench_args = argparse.Namespace(workers="1", threads=1, connections=16, playing=args.playing)
    rows = []
    try:
        media = root / "media"
        E.make_media(media, 186)
        keyring_json = new_keyring_json("bench1")
        for n in args.viewers:
            viewers = E.make_viewers(KeyRing.from_json(keyring_json), n, time.time())
            work = root / f"n{n}"
            (work / "cg").mkdir(parents=True)
            wrapper = work / "nginx-callgrind"
            wrapper.write_text(WRAPPER.format(nginx=nginx, out=work / "cg"))
            wrapper.chmod(0o755)
            bench = E.Bench(bench_args, nginx, work, media, keyring_json, origin="")
            with bench.stack:
                # The origin runs at full speed; only the edges under test run under callgrind.
                origin = E.ORIGIN_LOCATIONS.format(media=media)
                bench.origin, _ = E.peer_nginx(bench, "origin", origin)
                bench.nginx = str(wrapper)
                for name in args.configs:
                    edge = E.CONFIGS[name][1](bench)
                    E.check(edge, viewers[0], name)
                    urls = work / f"viewers-{name}.txt"
                    E.write_url_list(urls, edge, viewers)
                    offset = wrk(edge.base, urls, n, 0, args.warmup, [])
                    ir, done = nginx_per_request(bench, name, edge, urls, n, offset, args.duration)
                    offset += done
                    row = f"| {n:,} | {name} | {ir:,.0f} |"
                    if args.client:
                        client, _ = client_per_request(bench, edge, urls, n, offset, args.duration)
                        row += f" {client['Ir']:,.0f} | {client['DLmr'] + client['DLmw']:.1f} |"
                    rows.append(row)
                    print(row, file=sys.stderr, flush=True)
    finally:
        if args.keep:
            print(f"bench: dumps kept in {root}/n*/cg", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    mix = "viewers already playing" if args.playing else "full mix"
    counted = f"{args.warmup} s warm-up then {args.duration} s counted"
    print(f"callgrind, wrk -t1 -c16, {mix}, {counted}\n")
    head = "| N | edge | nginx instructions/request |"
    rule = "|---:|---|---:|"
    if args.client:
        head += " wrk instructions/request | wrk LL misses/request |"
        rule += "---:|---:|"
    print("\n".join([head, rule, *rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
