"""How fast a revocation reaches every validator: p50/p99 across real processes.

    .venv/bin/python bench/revocation_propagation.py [--validators 5] [--rounds 200]

Starts a real redis-server, a signer and N validators (``playgate serve-*`` subprocesses) on
loopback; see bench/propagation.py for what one round measures.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.propagation import fleet, measure_round, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--validators", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    samples: list[float] = []
    with fleet(validators=args.validators) as f:
        for _ in range(args.rounds):
            samples += measure_round(f)
    print(f"{args.validators} validators, {args.rounds} revocations")
    print(summary(samples))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
