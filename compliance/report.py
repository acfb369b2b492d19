"""Summarize Autobahn testsuite results from wstest's JSON report index.

Usage: python compliance/report.py compliance/reports/servers/index.json [--agent NAME]

``index.json`` (reports/servers/ for fuzzingclient, reports/clients/ for
fuzzingserver) maps agent -> case id -> {"behavior", "behaviorClose",
"duration" (ms), "remoteCloseCode", "reportfile"}.

A case passes when both ``behavior`` and ``behaviorClose`` are OK or
INFORMATIONAL.  Anything else (FAILED, NON-STRICT, UNIMPLEMENTED, ...) fails
the run.  Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

PASSING = ("OK", "INFORMATIONAL")


def case_key(case_id: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in case_id.split("."))


def load_index(path: Path, agent: str | None = None) -> tuple[str, dict[str, dict[str, Any]]]:
    """Return (agent, {case id: result}) from an index.json."""
    data = json.loads(path.read_text())
    if not data:
        raise ValueError(f"{path} has no agents")
    if agent is None or agent not in data:
        if agent is not None and len(data) != 1:
            raise ValueError(f"{path}: agent {agent!r} not among {sorted(data)}")
        if agent is None and len(data) != 1:
            raise ValueError(f"{path}: several agents {sorted(data)}: pass --agent")
        agent = next(iter(data))
    return agent, data[agent]


def summarize(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    cases = sorted(results, key=case_key)
    behavior = Counter(results[c].get("behavior", "MISSING") for c in cases)
    behavior_close = Counter(results[c].get("behaviorClose", "MISSING") for c in cases)
    by_result: dict[str, list[str]] = {}
    for c in cases:
        worst = {results[c].get("behavior", "MISSING"), results[c].get("behaviorClose", "MISSING")}
        for r in sorted(worst):
            if r != "OK":
                by_result.setdefault(r, []).append(c)
    failing = [
        c
        for c in cases
        if results[c].get("behavior") not in PASSING
        or results[c].get("behaviorClose") not in PASSING
    ]

    def duration(c: str) -> int | None:
        # A case whose connection never opened gets a meaningless duration.
        d = results[c].get("duration")
        return d if isinstance(d, int) and 0 <= d < 10**8 else None

    group9 = {c: duration(c) for c in cases if c.split(".")[0] == "9"}
    return {
        "cases": len(cases),
        "behavior": dict(behavior),
        "behaviorClose": dict(behavior_close),
        "ids_by_result": by_result,  # every non-OK result -> case ids
        "failing": failing,
        "passed": not failing and bool(cases),
        "durations_9": group9,
        "duration_total_ms": sum(duration(c) or 0 for c in cases),
    }


def _counts(counter: dict[str, int]) -> str:
    order = ["OK", "INFORMATIONAL", "NON-STRICT", "FAILED", "UNIMPLEMENTED"]
    keys = [k for k in order if k in counter] + sorted(k for k in counter if k not in order)
    return ", ".join(f"{k} {counter[k]}" for k in keys) or "(none)"


def _ids(ids: list[str], width: int = 100, indent: str = "    ") -> str:
    lines, line = [], ""
    for i in ids:
        if line and len(line) + len(i) + 2 > width:
            lines.append(line + ",")
            line = ""
        line = f"{line}, {i}" if line else i
    lines.append(line)
    cont = " " * len(indent)
    return "\n".join((indent if n == 0 else cont) + ln for n, ln in enumerate(lines))


def format_summary(title: str, agent: str, s: dict[str, Any]) -> str:
    out = [f"== {title} -- agent {agent!r}: {s['cases']} cases"]
    out.append(f"  behavior:      {_counts(s['behavior'])}")
    out.append(f"  behaviorClose: {_counts(s['behaviorClose'])}")
    ids = s["ids_by_result"]
    for result in ["FAILED", "NON-STRICT"] + sorted(
        r for r in ids if r not in ("FAILED", "NON-STRICT")
    ):
        listed = ids.get(result, [])
        if result in ("FAILED", "NON-STRICT") or listed:
            tag = " (passes)" if result in PASSING else ""
            out.append(f"  {result}{tag}: {len(listed)}" + (":" if listed else ""))
            if listed:
                out.append(_ids(listed))
    d9 = s["durations_9"]
    if d9:
        out.append(f"  9.x durations (ms), total {sum(v or 0 for v in d9.values())} ms:")
        groups: dict[str, list[str]] = {}
        for c, ms in d9.items():
            groups.setdefault(".".join(c.split(".")[:2]), []).append(f"{c}={ms}")
        for g in sorted(groups, key=case_key):
            out.append(_ids(groups[g], indent=f"    {g:<5} "))
    out.append(f"  sum of case durations: {s['duration_total_ms'] / 1000:.1f} s")
    verdict = (
        "PASS: every case OK or INFORMATIONAL"
        if s["passed"]
        else (
            f"FAIL: {len(s['failing'])} case(s) not OK/INFORMATIONAL"
            if s["cases"]
            else "FAIL: no cases ran"
        )
    )
    out.append(f"  verdict: {verdict}")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description="Summarize an Autobahn index.json")
    parser.add_argument("index", type=Path)
    parser.add_argument("--agent")
    args = parser.parse_args()
    agent, results = load_index(args.index, args.agent)
    s = summarize(results)
    print(format_summary(str(args.index), agent, s))
    return 0 if s["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
