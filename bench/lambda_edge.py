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
import json, sys, time
sys.path.insert(0, sys.argv[1])
from edge_validator.lambda_edge import handler
events = json.loads(sys.argv[2])
n = int(sys.argv[3])
out = {}
for name, event in events.items():
    handler(event, None)
    best = []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(n):
            handler(event, None)
        best.append((time.perf_counter() - t0) / n)
    out[name] = statistics.median(best)
print(json.dumps(out))
""".replace("import json, sys, time", "import json, statistics, sys, time")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from edge_validator.keyring import KeyRing, new_keyring_json
    from edge_validator.lambda_bundle import write_bundle
    from edge_validator.token import Claims, seal

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "keyring.json").write_text(new_keyring_json("k1"))
        size = write_bundle(work / "keyring.json", work / "lambda-edge.zip")
        with zipfile.ZipFile(work / "lambda-edge.zip") as zf:
            zf.extractall(work / "task")
        ring = KeyRing.from_file(work / "keyring.json")
        now = int(time.time())
        token = seal(Claims("k1", now + 3600, now - 5, "/videos/demo/", "bench"), ring)

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
        events = {
            "allowed, path token": event("viewer-request-path-token.json"),
            "allowed, query token + params": event("viewer-request-query-token.json"),
            "denied, bad signature": event("viewer-request-path-token.json", token[:-4] + "AAAA"),
            "denied, missing token": event("viewer-request-path-token.json", path_prefix=""),
        }
        warm = json.loads(
            subprocess.run(
                [
                    sys.executable,
                    "-I",
                    "-S",
                    "-c",
                    WARM,
                    str(work / "task"),
                    json.dumps(events),
                    str(args.calls),
                ],
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
