"""bench/e2e_race.py's goal bookkeeping (no servers run). (Skipped where the repository's
bench/ is not beside tests/, e.g. a wheel's test run.)"""

from __future__ import annotations

from types import ModuleType

import pytest
from bench_helpers import load_script


@pytest.fixture(scope="module")
def race() -> ModuleType:
    return load_script("e2e_race")


BEST = {
    "64 B x 1": {"wsfast": 110.0, "wsfast-cb": 120.0, "picows": 100.0, "picows-coro": 90.0},
    "64 B x 100": {"wsfast": 110.0, "wsfast-cb": 120.0, "picows": 100.0, "picows-coro": 90.0},
}


def test_goals_pair_like_styles(race: ModuleType) -> None:
    lines, failed = race.check_goals(race.GOALS, BEST, {})
    assert not failed
    text = "\n".join(lines)
    assert "wsfast/picows-coro" in text and "wsfast-cb/picows " in text
    assert "wsfast/picows " not in text  # the stricter pairing is shown apart, not counted
    assert len(lines) == 4  # websockets did not run: its goals are left out


def test_a_missed_goal_fails(race: ModuleType) -> None:
    best = {w: dict(per, **{"wsfast-cb": 99.0}) for w, per in BEST.items()}
    lines, failed = race.check_goals(race.GOALS, best, {})
    assert failed
    assert sum("MISSED" in line for line in lines) == 2


def test_a_failed_callback_variant_fails_the_check(race: ModuleType) -> None:
    # wsfast-cb failed after one repeat: its figure from before is ahead, the goal is not met.
    lines, failed = race.check_goals(race.GOALS, BEST, {"wsfast-cb": "in '64 B x 100': boom"})
    assert failed
    assert any("wsfast-cb FAILED" in line for line in lines)
    # ... and failed in its first run: no figure, no line, still a failure.
    best = {w: {k: v for k, v in per.items() if k != "wsfast-cb"} for w, per in BEST.items()}
    _, failed = race.check_goals(race.GOALS, best, {"wsfast-cb": "in '64 B x 1': boom"})
    assert failed


def test_a_peer_failing_is_not_ours(race: ModuleType) -> None:
    _, failed = race.check_goals(race.GOALS, BEST, {"websockets": "boom"})
    assert not failed


def test_compressed_goal_lines_fit_long_workload_names(race: ModuleType) -> None:
    best = {w.name: {"wsfast": 2.0, "websockets": 1.0} for w in race.COMPRESSED_WORKLOADS}
    lines, failed = race.check_goals(race.COMPRESSED_GOALS, best, {})
    assert not failed
    assert len({line.index("wsfast/") for line in lines}) == 1  # one column


def test_also_shown_is_the_stricter_pairing(race: ModuleType) -> None:
    lines = race.shown_also(BEST)
    assert len(lines) == 2 and all("wsfast/picows " in line for line in lines)
