# The ratio-regression check of .github/workflows/bench.yml, run here against the saved
# baseline (bench/baseline/linux-x86_64.json, measured on a 2-core shared VM). A short run of
# the kernel benchmarks, then bench/compare.py: ratios vs the pure twin and the peers must
# not drop by more than the margin (wider here than in the workflow, which compares two runs
# made in one job: this baseline came from another day and a busier machine).
python -m pip install -q ".[bench]"
python -m pytest bench/test_bench_mask.py bench/test_bench_utf8.py bench/test_bench_frames.py \
  --benchmark-only -k "not 16MiB and not 1MiB" --benchmark-min-rounds=5 \
  --benchmark-max-time=0.05 -p no:cacheprovider -q --benchmark-json="$CI_WORK/bench.json" \
  >"$CI_WORK/bench.log" || { tail -n 40 "$CI_WORK/bench.log"; exit 1; }
python bench/compare.py bench/baseline/linux-x86_64.json "$CI_WORK/bench.json" --margin 0.5
