"""pytest-benchmark suite for wsfast's kernels, their pure twins and peer libraries.

Run from the repository root::

    python -m pytest bench --benchmark-only
    python -m pytest bench --benchmark-only -k "apply_mask and 64KiB"   # a subset

Each comparison is a pytest-benchmark group (``apply_mask 64 KiB``, ``FrameParser 10000 x
32 B``, ...) so that wsfast, its pure twin, the peers and baselines print side by side; the
groups are listed in the order they ran, and a last section sums the groups up as speed
ratios. Peers that are not installed are skipped.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for any --import-mode

import _benchutil as util

import wsfast


@pytest.hookimpl(hookwrapper=True)
def pytest_benchmark_group_stats(config: Any, benchmarks: Any, group_by: str) -> Any:
    """List the groups in the order their benchmarks ran, not alphabetically."""
    outcome = yield
    groups = outcome.get_result()
    first = {id(bench): i for i, bench in enumerate(benchmarks)}
    order = {name: min(first.get(id(b), 0) for b in members) for name, members in groups}
    outcome.force_result(sorted(groups, key=lambda pair: order[pair[0]]))


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not util.RESULTS:
        return
    tr = terminalreporter
    tr.section(f"wsfast ({wsfast.implementation}) speed ratios: other's best time / wsfast's")
    tr.write_line(
        "Best (min) round of each benchmark; not interleaved, so noisier than "
        "`python -m wsfast bench`, which checks the targets."
    )
    for group, times in util.RESULTS.items():
        ours = times.get("wsfast")
        if ours is None:
            continue
        parts = []
        for who, best in times.items():
            if who == "wsfast":
                continue
            ratio = best / ours
            text = f"{who} {ratio:,.2f}x"
            target = util.TARGETS.get((group, who))
            if target is not None:
                text += f" (target >={target:g}x: {'met' if ratio >= target else 'MISSED'})"
            parts.append(text)
        tr.write_line(f"{group:<38} " + ("; ".join(parts) or "-"))
