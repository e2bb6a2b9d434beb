"""The edge benchmark's harness runs (bench/edge.py): tiny N, one short round, every
configuration. No figure is checked, only that each configuration served the viewers' HLS mix
and got a row (the benchmark itself is run by hand: docs/performance.md#nginx-edge)."""

from __future__ import annotations

import re

import pytest

from bench import edge
from playgate.processes import require_tool


def test_the_edge_benchmark_runs_every_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    for tool in ("nginx", "wrk", "ffmpeg"):
        require_tool(tool)
    argv = ["--viewers", "3", "--rounds", "1", "--duration", "1", "--warmup", "1"]
    assert edge.main([*argv, "--warmup-max", "1", "--segment-kb", "40"]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "N = 3 viewers" in out
    rows = {line.split(" | ")[0].lstrip("| ") for line in out.splitlines() if line.startswith("| ")}
    for name in edge.DEFAULT_CONFIGS:
        # A configuration this machine cannot run says so (the native validator's module).
        assert edge.CONFIGS[name][0] in rows or f"{name} left out" in captured.err, out
    # Against itself, by the medians and round by round.
    ratio = re.search(
        r"\| nginx `secure_link` \(the peer\) \| [\d,]+ \| [\d,]+ \| 1\.00 \| 1\.00 \|", out
    )
    assert ratio, out
    # The host's steal beside each configuration: a slow round the edge did not cause shows.
    assert re.search(r"\| steal % \(max\) \|\n", out), out


def test_the_shield_without_zero_copy_serves_the_mix(capsys: pytest.CaptureFixture[str]) -> None:
    # Plain uvicorn offers no zero-copy: the shield's fallback (read whole in a worker thread)
    # answers every step of the viewers' mix.
    argv = ["--viewers", "3", "--rounds", "1", "--duration", "1", "--warmup", "1"]
    argv += ["--warmup-max", "1", "--segment-kb", "40", "--configs", "shield_uvicorn"]
    assert edge.main(argv) == 0
    assert f"| {edge.CONFIGS['shield_uvicorn'][0]} |" in capsys.readouterr().out
