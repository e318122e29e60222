"""The reference anchor script (`anchor_bench.py`, pyreft on PyTorch) with one more position spec,
`pN`: the last N positions of the prompt (the first half of each row; the script labels the
second half). That is pyreft's quickstart placement: the reference's `l1` intervenes on a row's
last token, whose output no label follows, so its gradient is zero and the case measures only the
cost of finding that out. Runs the reference's own `main()` with its `positions` extended.

usage: ANCHOR_BENCH=.device/anchor_bench.py python3 benches/anchor_bench_ext.py ARGS (as anchor_bench.py)
"""
import importlib.util
import os

path = os.environ.get("ANCHOR_BENCH", ".device/anchor_bench.py")
spec = importlib.util.spec_from_file_location("anchor_bench", path)
ab = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ab)
reference_positions = ab.positions


def positions(s, seq):
    parts = s.split("+")
    prompt = [int(p[1:]) for p in parts if p.startswith("p")]
    rest = "+".join(p for p in parts if not p.startswith("p"))
    out = reference_positions(rest, seq) if rest else []
    for n in prompt:
        out += list(range(seq // 2 - n, seq // 2))
    return sorted(set(out))


ab.positions = positions
if __name__ == "__main__":
    ab.main()
