"""bench/compare.py, the ratio-regression check of the benchmark workflow: it passes when the
ratios hold, fails on a drop beyond the margin, and guards only the pure twin and peers.
(Skipped where the repository's bench/ is not beside tests/, e.g. a wheel's test run.)"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
from bench_helpers import load_script


@pytest.fixture(scope="module")
def compare() -> ModuleType:
    return load_script("compare")


def run(times: dict[str, dict[str, float]]) -> dict[str, object]:
    return {
        "benchmarks": [
            {"group": g, "extra_info": {"contender": who}, "stats": {"min": t}}
            for g, by_who in times.items()
            for who, t in by_who.items()
        ]
    }


BASE = {
    "apply_mask 64 KiB": {"wsfast": 1.0, "pure": 100.0, "websockets": 2.0, "copy": 1.0},
    "FrameParser 10000 x 32 B": {"wsfast": 1.0, "aiohttp": 6.0},
}


def write(tmp_path: Path, name: str, times: dict[str, dict[str, float]]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(run(times)))
    return path


def test_same_ratios_pass(compare: ModuleType, tmp_path: Path) -> None:
    # Everything twice as slow on another machine: the same ratios, no regression.
    slower = {g: {w: t * 2 for w, t in by.items()} for g, by in BASE.items()}
    summary = tmp_path / "summary.md"
    args = [str(write(tmp_path, "a.json", BASE)), str(write(tmp_path, "b.json", slower))]
    assert compare.main([*args, "--summary", str(summary)]) == 0
    assert "No regression." in summary.read_text()


def test_a_guarded_drop_fails(compare: ModuleType, tmp_path: Path) -> None:
    worse = json.loads(json.dumps(BASE))
    worse["FrameParser 10000 x 32 B"]["wsfast"] = 1.5  # vs aiohttp: 6x -> 4x, -33%
    args = [str(write(tmp_path, "a.json", BASE)), str(write(tmp_path, "b.json", worse))]
    assert compare.main(args) == 1
    assert compare.main([*args, "--margin", "0.4"]) == 0


def test_unguarded_rows_are_information(compare: ModuleType, tmp_path: Path) -> None:
    worse = json.loads(json.dumps(BASE))
    worse["apply_mask 64 KiB"]["copy"] = 0.1  # vs a plain copy: shown, never fails
    args = [str(write(tmp_path, "a.json", BASE)), str(write(tmp_path, "b.json", worse))]
    assert compare.main(args) == 0


def test_nothing_in_common_is_an_error(compare: ModuleType, tmp_path: Path) -> None:
    other = {"something else": {"wsfast": 1.0, "pure": 3.0}}
    args = [str(write(tmp_path, "a.json", BASE)), str(write(tmp_path, "b.json", other))]
    assert compare.main(args) == 2


def test_compact_baseline_round_trip(compare: ModuleType, tmp_path: Path) -> None:
    full = run(BASE) | {"machine_info": {"machine": "x86_64", "cpu": {"brand_raw": "CPU"}}}
    source = tmp_path / "full.json"
    source.write_text(json.dumps(full))
    out = tmp_path / "baseline.json"
    assert compare.main([str(source), "--write-baseline", str(out)]) == 0
    assert compare.best_times(json.loads(out.read_text())) == BASE
    assert compare.main([str(out), str(source)]) == 0
