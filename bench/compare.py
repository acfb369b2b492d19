"""Compare two pytest-benchmark runs by their speed *ratios*, and fail on a regression.

    python bench/compare.py BASELINE.json CURRENT.json [--margin 0.25] [--summary FILE]
    python bench/compare.py RUN.json --write-baseline bench/baseline/NAME.json

Within one run, every group (``apply_mask 64 KiB``, ``FrameParser 10000 x 32 B``, ...) times
wsfast and its contenders on the same machine, so ``other's best time / wsfast's best time``
is a ratio that survives a noisy CI machine far better than any absolute time. For each
group and contender present in both runs, the current ratio is compared with the baseline's:

- against the pure-Python twin (``pure``) and the peer libraries (websockets, aiohttp,
  wsaccel, wsproto, picows), a ratio that fell by more than ``--margin`` (a fraction: 0.25 is
  25%) is a regression, and the exit status is 1;
- against baselines such as a plain copy or ``bytes.decode``, the change is shown only.

The table goes to stdout, and as Markdown to ``--summary`` (e.g. ``$GITHUB_STEP_SUMMARY``).
Exit status 2 when the runs have no guarded comparison in common (a wrong file, say).
``--write-baseline`` keeps only what this script reads (group, contender, best time).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GUARDED = {"pure", "websockets", "aiohttp", "wsaccel", "wsproto", "picows"}
OURS = "wsfast"


@dataclass(frozen=True)
class Change:
    group: str
    contender: str
    base: float | None  # other's time / wsfast's time in the baseline run
    current: float | None
    guarded: bool

    def regressed(self, margin: float) -> bool:
        if not self.guarded or self.base is None or self.current is None:
            return False
        return self.current < self.base * (1 - margin)


def contender(bench: dict[str, Any]) -> str | None:
    extra = bench.get("extra_info") or {}
    params = bench.get("params") or {}
    who = extra.get("contender", params.get("who"))
    return who if isinstance(who, str) else None


def best_times(run: dict[str, Any]) -> dict[str, dict[str, float]]:
    """group -> contender -> best (minimum) time, from a pytest-benchmark JSON document."""
    out: dict[str, dict[str, float]] = {}
    for bench in run.get("benchmarks", []):
        who = contender(bench)
        group = bench.get("group")
        best = (bench.get("stats") or {}).get("min")
        if who and group and isinstance(best, (int, float)) and best > 0:
            out.setdefault(group, {})[who] = float(best)
    return out


def ratios(times: dict[str, dict[str, float]]) -> dict[tuple[str, str], float]:
    out = {}
    for group, by_who in times.items():
        ours = by_who.get(OURS)
        if ours is None:
            continue
        for who, t in by_who.items():
            if who != OURS:
                out[(group, who)] = t / ours
    return out


def compare(base: dict[str, Any], current: dict[str, Any]) -> list[Change]:
    before, after = ratios(best_times(base)), ratios(best_times(current))
    keys = sorted(before.keys() | after.keys())
    return [Change(g, w, before.get((g, w)), after.get((g, w)), w in GUARDED) for g, w in keys]


def _fmt(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:,.2f}x"


def table(changes: list[Change], margin: float) -> list[tuple[str, ...]]:
    rows = []
    for c in changes:
        if c.base is None or c.current is None:
            delta, verdict = "", "only in one run"
        else:
            delta = f"{(c.current / c.base - 1) * 100:+.0f}%"
            verdict = "REGRESSION" if c.regressed(margin) else ("ok" if c.guarded else "info")
        rows.append((c.group, c.contender, _fmt(c.base), _fmt(c.current), delta, verdict))
    return rows


HEAD = ("group", "vs", "baseline ratio", "current ratio", "change", "verdict")


def markdown(rows: list[tuple[str, ...]], margin: float, failed: int) -> str:
    lines = [
        "### wsfast speed ratios (other's best time / wsfast's), current vs baseline",
        "",
        f"Guarded (vs the pure twin and peers): a drop of more than {margin:.0%} fails. "
        + (f"**{failed} regression(s).**" if failed else "No regression."),
        "",
        "| " + " | ".join(HEAD) + " |",
        "|" + "---|" * len(HEAD),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def plain(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in [HEAD, *rows]) for i in range(len(HEAD))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [HEAD, *rows]
    )


def compact(run: dict[str, Any]) -> dict[str, Any]:
    """The parts of a pytest-benchmark document that this script reads."""
    kept = []
    for group, by_who in best_times(run).items():
        for who, best in by_who.items():
            kept.append({"group": group, "extra_info": {"contender": who}, "stats": {"min": best}})
    info = run.get("machine_info") or {}
    machine = {k: info.get(k) for k in ("machine", "python_version", "cpu") if k in info}
    if isinstance(machine.get("cpu"), dict):
        machine["cpu"] = machine["cpu"].get("brand_raw")
    return {"machine_info": machine, "datetime": run.get("datetime"), "benchmarks": kept}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("baseline", type=Path)
    parser.add_argument("current", type=Path, nargs="?")
    parser.add_argument("--margin", type=float, default=0.25, help="largest drop that passes")
    parser.add_argument("--summary", type=Path, help="append the Markdown table to this file")
    parser.add_argument(
        "--write-baseline", type=Path, metavar="OUT", help="write BASELINE, compacted"
    )
    args = parser.parse_args(argv)
    base = json.loads(args.baseline.read_text(encoding="utf-8"))
    if args.write_baseline:
        text = json.dumps(compact(base), indent=1, sort_keys=True)
        args.write_baseline.write_text(text + "\n", encoding="utf-8")
        return 0
    if args.current is None:
        parser.error("CURRENT is required unless --write-baseline is given")
    if not 0 <= args.margin < 1:
        parser.error("--margin must be in [0, 1)")
    current = json.loads(args.current.read_text(encoding="utf-8"))
    changes = compare(base, current)
    rows = table(changes, args.margin)
    failed = sum(c.regressed(args.margin) for c in changes)
    print(plain(rows))
    if args.summary:
        with args.summary.open("a", encoding="utf-8") as f:
            f.write(markdown(rows, args.margin, failed))
    common = [c for c in changes if c.guarded and c.base is not None and c.current is not None]
    if not common:
        print("error: no guarded ratio appears in both runs", file=sys.stderr)
        return 2
    print(f"{len(common)} guarded ratios compared, {failed} regressed beyond {args.margin:.0%}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
