"""Lambda@Edge handler: cold import time and per-invocation time, from the built zip.

Run: .venv/bin/python bench/lambda_edge.py [--runs 30]
Builds a bundle with a fresh key ring into a temp folder, unzips it, and measures:
- cold import: a fresh ``python -I -S`` process imports the handler from the unzipped bundle
  (time from before the import to after it; interpreter start-up excluded), median of N runs;
- cold first call: the first invocation in such a process (loads the baked key ring);
- per invocation: warm handler calls on CloudFront events (allowed and denied), median per call.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "tests" / "events"

COLD = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
event = json.loads(sys.argv[2])
t0 = time.perf_counter()
from edge_validator.lambda_edge import handler
t1 = time.perf_counter()
result = handler(event, None)
t2 = time.perf_counter()
assert "uri" in result, result
print(json.dumps([t1 - t0, t2 - t1]))
"""

WARM = """
import json, statistics, sys, time
sys.path.insert(0, sys.argv[1])
from edge_validator.lambda_edge import handler
out = {}
for name, spec in json.load(sys.stdin).items():
    rounds, repeat = spec["rounds"], spec["repeat"]
    handler(spec["warmup"], None)
    per_call = []
    for events in rounds:
        t0 = time.perf_counter()
        for _ in range(repeat):
            for event in events:
                handler(event, None)
        per_call.append((time.perf_counter() - t0) / (repeat * len(events)))
    out[name] = statistics.median(per_call)
print(json.dumps(out))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from edge_validator.core.keyring import KeyRing, new_keyring_json
    from edge_validator.core.token import Claims, seal
    from playgate.lambda_bundle import write_bundle

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "keyring.json").write_text(new_keyring_json("k1"))
        size = write_bundle(work / "keyring.json", work / "lambda-edge.zip")
        with zipfile.ZipFile(work / "lambda-edge.zip") as zf:
            zf.extractall(work / "task")
        ring = KeyRing.from_file(work / "keyring.json")
        now = int(time.time())
        token = seal(Claims("k1", now + 3000, now - 5, "/videos/demo/", "bench"), ring)

        def event(name: str, tok: str = token, path_prefix: str = "/t/__TOKEN__") -> object:
            text = (EVENTS / name).read_text().replace(path_prefix, path_prefix and "/t/" + tok)
            return json.loads(text.replace("__TOKEN__", tok))

        cold = [
            json.loads(
                subprocess.run(
                    [
                        sys.executable,
                        "-I",
                        "-S",
                        "-c",
                        COLD,
                        str(work / "task"),
                        json.dumps(event("viewer-request-path-token.json")),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
            for _ in range(args.runs)
        ]

        def mint(i: int) -> str:
            return seal(Claims("k1", now + 3000, now - 5, "/videos/demo/", f"b{i}"), ring)

        def repeated(e: object) -> dict[str, object]:
            return {"rounds": [[e]] * 7, "repeat": args.calls, "warmup": e}

        path_event = "viewer-request-path-token.json"
        fresh = [event(path_event, mint(i)) for i in range(7 * 2000 + 1)]
        specs = {
            "allowed, path token, same token again (a player's next segment)": repeated(
                event(path_event)
            ),
            "allowed, path token, first sight of each token": {
                "rounds": [fresh[1 + r * 2000 : 1 + (r + 1) * 2000] for r in range(7)],
                "repeat": 1,
                "warmup": fresh[0],
            },
            "allowed, query token + params": repeated(event("viewer-request-query-token.json")),
            "denied, bad signature": repeated(event(path_event, token[:-4] + "AAAA")),
            "denied, missing token": repeated(event(path_event, path_prefix="")),
        }
        warm = json.loads(
            subprocess.run(
                [sys.executable, "-I", "-S", "-c", WARM, str(work / "task")],
                input=json.dumps(specs),
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
    print(f"bundle: {size} bytes (limit 1048576)")
    imports = sorted(c[0] for c in cold)
    firsts = sorted(c[1] for c in cold)
    print(
        f"cold import of the handler: median {statistics.median(imports) * 1e3:.2f} ms, "
        f"max {imports[-1] * 1e3:.2f} ms over {args.runs} fresh processes"
    )
    print(
        f"cold first invocation (loads the baked key ring): median "
        f"{statistics.median(firsts) * 1e3:.2f} ms"
    )
    for name, seconds in warm.items():
        print(f"per invocation, {name}: {seconds * 1e6:.2f} us")


if __name__ == "__main__":
    main()
