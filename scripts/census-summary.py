#!/usr/bin/env python3
"""Sums an Nsight Compute CSV (`ncu --csv --metrics gpu__time_duration.sum`) of
`anchor --methods census` by kernel name, per section: the marker kernels (an f64 fill and
sum) split the run into
the model's set-up, one training step and one forward (scripts/gpu-census.sh).

    python3 scripts/census-summary.py census.csv[.xz] [top]
"""
import csv
import lzma
import sys
from collections import defaultdict

UNIT = {"nsecond": 1e-9, "ns": 1e-9, "usecond": 1e-6, "us": 1e-6, "msecond": 1e-3, "ms": 1e-3, "second": 1.0, "s": 1.0}


def rows(path):
    opener = lzma.open if path.endswith(".xz") else open
    with opener(path, "rt", errors="replace") as f:
        lines = [l for l in f if l.startswith('"')]
    reader = csv.reader(lines)
    head = None
    for r in reader:
        if r and r[0] == "ID":
            head = {k: i for i, k in enumerate(r)}
            continue
        if head is None or len(r) < len(head) or r[head["Metric Name"]] != "gpu__time_duration.sum":
            continue
        value = float(r[head["Metric Value"]].replace(",", ""))
        yield r[head["Kernel Name"]], value * UNIT.get(r[head["Metric Unit"]], 1e-9)


def short(name):
    """Kernel names without template arguments and parameter lists."""
    return name.split("(")[0].split("<")[0][:70]


def main():
    path = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    # A marker is a fill of f64 ones and their sum; other f64 kernels (the LoReFT rotation's
    # orthogonalisation runs in f64) belong to their section.
    sections = [[]]
    for name, s in rows(path):
        if name.startswith("fast_sum_f64") and sections[-1] and sections[-1][-1][0].startswith("const_set_f64"):
            sections[-1].pop()
            sections.append([])
        else:
            sections[-1].append((name, s))
    if len(sections) == 1 and not sections[0]:
        opener = lzma.open if path.endswith(".xz") else open
        print("no kernel rows parsed; the file starts:")
        with opener(path, "rt", errors="replace") as f:
            for _, line in zip(range(8), f):
                print(line.rstrip()[:200])
        return
    labels = ["set-up", "train step", "forward"] + [f"after {i}" for i in range(3, 10)]
    print(f"{sum(len(x) for x in sections)} kernels in {len(sections)} sections")
    for label, ks in zip(labels, sections):
        if label == "set-up" or not ks:
            continue
        total = sum(s for _, s in ks)
        by = defaultdict(lambda: [0, 0.0])
        for name, s in ks:
            by[short(name)][0] += 1
            by[short(name)][1] += s
        gemm = sum(s for n, s in ks if any(t in n.lower() for t in ("gemm", "xmma", "cutlass", "sm90")))
        print(f"\n## {label}: {len(ks)} kernels, {total * 1e3:.2f} ms of kernel time ({gemm * 1e3:.2f} ms in GEMMs)")
        print(f"{'kernel':70s} {'calls':>6s} {'ms':>8s} {'share':>6s}")
        for name, (n, s) in sorted(by.items(), key=lambda kv: -kv[1][1])[:top]:
            print(f"{name:70s} {n:6d} {s * 1e3:8.3f} {100 * s / total:5.1f}%")


if __name__ == "__main__":
    main()
