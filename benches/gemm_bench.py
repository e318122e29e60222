"""PyTorch's bf16 GEMMs on the shapes of crates/reft-core/examples/gemm_bench.rs (issue 6), in the
same session on the same GPU: `F.linear(x, w)` (the forward) and `g @ w` (the input gradient).
One JSON line per shape and direction. Run by scripts/gpu-session.sh; needs torch with CUDA."""
import json
import os
import sys

import torch
import torch.nn.functional as F

# [name, rows m, outputs n, inputs k], shared with the Rust side.
SHAPES = json.load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "gemm_shapes.json")))


def median_ms(fn, reps):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return sorted(times)[len(times) // 2]


def main():
    reps = int(sys.argv[sys.argv.index("--reps") + 1]) if "--reps" in sys.argv else 20
    dev = torch.device("cuda")
    for name, m, n, k in SHAPES:
        x = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
        w = (torch.randn(n, k, device=dev) * 0.02).to(torch.bfloat16)
        g = torch.randn(m, n, device=dev, dtype=torch.bfloat16)
        flop = 2.0 * m * n * k
        for direction, fn in (("forward", lambda: F.linear(x, w)), ("backward", lambda: g @ w)):
            ms = median_ms(fn, reps)
            print(json.dumps({"shape": name, "m": m, "n": n, "k": k, "dir": direction, "torch_ms": round(ms, 4),
                              "torch_tflops": round(flop / (ms / 1e3) / 1e12, 1)}), flush=True)


if __name__ == "__main__":
    main()
