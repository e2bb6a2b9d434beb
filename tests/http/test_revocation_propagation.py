"""Revocation reaches every running validator process (3 real processes, real Redis)."""

from __future__ import annotations

from bench.propagation import fleet, measure_round, summary

ROUNDS = 10


def test_every_validator_enforces_a_revocation() -> None:
    samples: list[float] = []
    with fleet(validators=3) as f:
        for _ in range(ROUNDS):
            samples += measure_round(f, bound=10.0)
    print("\n" + summary(samples))
    # Functional bound only; the figure itself is reported by bench/revocation_propagation.py.
    assert max(samples) <= 10.0
