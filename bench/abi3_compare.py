"""Would one abi3 wheel (Limited API, CPython 3.11+) be as fast as the version-specific ones?

    python bench/abi3_compare.py [--rounds 5]
    python bench/abi3_compare.py --against main   # this checkout vs another git ref instead

(``--against REF`` times the checkout's usual build against REF's, with the same workloads:
e.g. what the free-threading guards cost on a GIL build.)

Builds this checkout twice with the running interpreter (3.11 or later) into scratch
directories: as usual, and against the Limited API (``Py_LIMITED_API=0x030B0000``; a small
forced-include header maps the four byte-buffer macros the kernels use, which the Limited API
lacks, to their function forms). Then times the kernels and the sans-I/O connection race on
both builds, alternating the two builds' processes ``--rounds`` times, and prints each
workload's best time per build and the ratio. The decision rule of the release: one abi3
wheel only if every workload is within 5% of the version-specific build.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMITED = "0x030B0000"
SHIM = """\
#include <Python.h>
/* Limited API: the byte-buffer macros are not part of it; their function forms are. */
#ifndef PyBytes_AS_STRING
#define PyBytes_AS_STRING(o) PyBytes_AsString(o)
#define PyBytes_GET_SIZE(o) PyBytes_Size(o)
#endif
#ifndef PyByteArray_AS_STRING
#define PyByteArray_AS_STRING(o) PyByteArray_AsString(o)
#define PyByteArray_GET_SIZE(o) PyByteArray_Size(o)
#endif
"""

# Run in a child process with one build on sys.path: prints {workload: best seconds}.
WORKLOADS = r"""
import json, random, sys, timeit
import wsfast, wsfast.connection
assert wsfast.implementation == "cython" and wsfast.connection.implementation == "cython"
rng = random.Random(0)
mask = b"\x37\xfa\x21\x3d"
small, big = rng.randbytes(6), rng.randbytes(65536)
ascii_text = (b"The quick brown fox jumps over the lazy dog. " * 1500)[:65536]
mixed = ("Καλημέρα κόσμε 你好，世界 " * 3000).encode()[:65536].decode("utf-8", "ignore").encode()
frames = b"".join(wsfast.build_header(2, 32, mask=mask) + wsfast.apply_mask(rng.randbytes(32), mask)
                  for _ in range(10000))

def parse():
    wsfast.FrameParser(require_mask=True).feed(frames)

client = wsfast.ClientConnection("example.com")
server = wsfast.ServerConnection()
server.receive_data(client.data_to_send()); server.events(); server.accept()
client.receive_data(server.data_to_send()); client.events()
message = "x" * 32

def race():
    for _ in range(1000):
        client.send_text(message)
        server.receive_data(client.data_to_send())
        for event in server.events():
            server.send_text(event.data)
        client.receive_data(server.data_to_send())
        client.events()

validator = wsfast.Utf8Validator()
cases = {
    "apply_mask 6 B (per call)": (lambda: wsfast.apply_mask(small, mask), 1),
    "apply_mask 64 KiB": (lambda: wsfast.apply_mask(big, mask), 1),
    "validate_utf8 64 KiB ASCII": (lambda: wsfast.validate_utf8(ascii_text), 1),
    "Utf8Validator.feed 64 KiB Greek/CJK": (lambda: validator.feed(mixed), 1),
    "FrameParser 10,000 x 32 B (per frame)": (parse, 10000),
    "connection race, 32 B text (per round trip)": (race, 1000),
}
out = {}
for name, (fn, per) in cases.items():
    timer = timeit.Timer(fn)
    n, _ = timer.autorange()
    out[name] = min(timer.repeat(7, n)) / n / per
print(json.dumps(out))
"""


def build(src: Path, limited: bool, scratch: Path) -> None:
    env = dict(os.environ, WSFAST_BUILD_EXTENSIONS="1")
    if limited:
        # Cython's Limited API mode cannot make a classmethod (ClientConnection.from_uri) of
        # a method compiled with binding=False: the connection needs binding=True there.
        setup = src / "setup.py"
        text = setup.read_text()
        old = '"annotation_typing": False,\n            "binding": False,'
        if old not in text:
            raise SystemExit("setup.py changed: update the Limited API patch in " + __file__)
        setup.write_text(text.replace(old, old.replace('"binding": False', '"binding": True')))
        shim = scratch / "limited_shim.h"
        shim.write_text(SHIM)
        env["CFLAGS"] = f"-DPy_LIMITED_API={LIMITED} -include {shim}"
    subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
        cwd=src,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def copy_ref(ref: str, dest: Path) -> None:
    """The tree of git ``ref``, unpacked at ``dest``."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)


def copy_checkout(dest: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        source = ROOT / os.fsdecode(name)
        if source.is_file():
            target = dest / os.fsdecode(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())


def measure(src: Path) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(src / "src"))
    env.pop("WSFAST_NO_EXTENSIONS", None)
    done = subprocess.run(
        [sys.executable, "-c", WORKLOADS], env=env, check=True, capture_output=True, text=True
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating runs per build")
    parser.add_argument("--against", metavar="REF", help="compare with git REF, not abi3")
    args = parser.parse_args()
    if sys.version_info < (3, 11):
        print("the Limited API baseline is 3.11: run this with CPython 3.11 or later")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        other = args.against or "abi3"
        builds = {"specific": scratch / "specific", other: scratch / "other"}
        for label, src in builds.items():
            if label == args.against:
                copy_ref(label, src)
            else:
                copy_checkout(src)
            build(src, label == "abi3", scratch)
            print(f"built {label}", flush=True)
        best: dict[str, dict[str, float]] = {label: {} for label in builds}
        for r in range(args.rounds):
            order = list(builds) if r % 2 == 0 else list(builds)[::-1]
            for label in order:
                for name, t in measure(builds[label]).items():
                    best[label][name] = min(best[label].get(name, t), t)
    print(f"\nPython {sys.version.split()[0]}, best of {args.rounds} alternating runs each")
    mine = "version-specific" if other == "abi3" else "this checkout"
    ratio_label = other + ("/specific" if other == "abi3" else "/this")
    print(f"{'workload':46} {mine:>17} {other:>12} {ratio_label:>14}")
    worst = 0.0
    for name, t in best["specific"].items():
        ratio = best[other][name] / t
        worst = max(worst, ratio)
        print(f"{name:46} {t * 1e9:14,.1f} ns {best[other][name] * 1e9:9,.1f} ns {ratio:13.3f}x")
    if other == "abi3":
        verdict = "within" if worst <= 1.05 else "NOT within"
        print(f"\nslowest abi3 workload: {worst:.3f}x the version-specific build ({verdict} 5%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
