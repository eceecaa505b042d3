#!/usr/bin/env python3
"""Plots `flashsampling bench` CSV files: time per call against batch size, one panel per shape,
one line per variant (fused, cublas-gemm, unfused, …), with the floor drawn.

    python3 tools/plot_bench.py bench-out/bench-cuda.csv [more.csv ...] -o bench-out/bench.png
"""
import argparse
import csv
from collections import defaultdict


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv", nargs="+")
    ap.add_argument("-o", "--output", default="bench-out/bench.png")
    args = ap.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for path in args.csv for r in csv.DictReader(open(path))]
    shapes = sorted({(int(r["dim"]), int(r["vocab"])) for r in rows})
    fig, axes = plt.subplots(1, len(shapes), figsize=(5 * len(shapes), 4), squeeze=False)
    for ax, (dim, vocab) in zip(axes[0], shapes):
        lines = defaultdict(list)
        floor = {}
        for r in rows:
            if (int(r["dim"]), int(r["vocab"])) != (dim, vocab):
                continue
            b = int(r["batch"])
            lines[f'{r["backend"]} {r["variant"]}'].append((b, float(r["median_us"])))
            if float(r["floor_us"]) > 0:
                floor[b] = float(r["floor_us"])
        for name, pts in sorted(lines.items()):
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
        if floor:
            bs = sorted(floor)
            ax.plot(bs, [floor[b] for b in bs], "k--", label="floor")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch")
        ax.set_ylabel("µs per call")
        ax.set_title(f"D={dim}, V={vocab}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.output, dpi=110)
    print("wrote", args.output)


if __name__ == "__main__":
    main()
