"""``python -m wsfast bench``: the scenario table is consistent, and one quick round prints
every row with a verdict (timings themselves are never asserted)."""

from __future__ import annotations

import pytest

import wsfast
from wsfast.cli import bench


@pytest.mark.parametrize("scenario", bench.SCENARIOS, ids=lambda s: f"{s.kernel} {s.size}")
def test_every_row_names_a_contender(scenario: bench.Scenario) -> None:
    contenders = scenario.contenders(scenario.size)
    keys = [c.key for c in contenders]
    assert keys[0] == "wsfast" and len(set(keys)) == len(keys)
    assert {row.vs for row in scenario.rows} <= set(keys)
    for c in contenders:  # every check passes (or names a missing peer)
        try:
            if c.check is not None:
                c.check()
        except bench.PeerUnavailable:
            pass


def test_quick_round(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--quick", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[1] == f"implementation: {wsfast.implementation}"
    for scenario in bench.SCENARIOS:
        assert any(line.startswith(scenario.kernel) for line in lines), scenario.kernel
    assert "WRONG RESULT" not in out
    if wsfast.implementation == "cython":
        assert any(line.startswith("targets met: ") for line in lines)
    else:
        assert any(line.startswith("targets: not assessed") for line in lines)


def test_bad_arguments() -> None:
    assert bench.main(["--repeat", "0"]) == 2
    assert bench.main(["--no-such-option"]) == 2
