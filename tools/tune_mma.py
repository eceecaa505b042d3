#!/usr/bin/env python3
"""Tunes the tensor-core fused kernel (crates/cuda/kernels/fused_mma.cu) on a GPU machine.

Compiles the kernel sources with NVRTC through CuPy once per configuration of its compile-time
knobs (-D overrides), times each on several shapes and batch sizes (median of device-event
timings of 10 back-to-back memsets + launches, as the library launches them), checks that every
configuration returns the same candidates as the first, and prints a table. Needs CuPy; no Rust
toolchain. The data are scaled as the benchmark's synthetic head (logits of standard deviation 2).

    python3 tools/tune_mma.py [--shapes 8192x128256,...] [--batches 1,16,64,128] [--iters 50] [--configs 'a;b']
                              [--kernels DIR] [--modes sampled,greedy] [--reference FILE.npz]

`--kernels` compiles the sources of another directory (a changed copy, to compare against the
checked-in kernels in the same call); `--modes greedy` makes every row greedy, which leaves the
noise out: the difference to a sampled run is what the noise costs; `--reference` compares the
candidates with those a previous call saved (another kernel directory, say), or saves them.
"""
import argparse
import pathlib
import statistics

import cupy as cp
import numpy as np

KERNELS = pathlib.Path(__file__).resolve().parent.parent / "crates" / "cuda" / "kernels"
SOURCES = ["common.cuh", "wgmma.cuh", "tile_lists.cuh", "fused_mma.cu"]  # what fused_mma.cu needs: less to compile per configuration
N_TILES = [1, 2, 4, 8, 16]

CONFIGS = {
    "default": {},
    "no-L2-prefetch": {"MMA_W_COPY": '"cp.async.cg.shared.global"'},
    "stages=3": {"MMA_STAGES": 3},
    "stages=5": {"MMA_STAGES": 5},
    "in-flight-stages=4": {"MMA_STAGES_IN_FLIGHT": 4},
    "mma.sync": {"MMA_WGMMA_MIN_NT": 99},
    "wgmma-wait-0": {"MMA_WGMMA_IN_FLIGHT": 0},
    "warps=4": {"MMA_WARPS": 4},
    "stages=6": {"MMA_STAGES": 6},
    # Grid choice (not compile-time): one block per step of the block's tiles.
    "grid=steps": {"_grid": "steps"},
}


def shared_bytes(nt):
    """Shared bytes a launch gets: the block's whole share of a Hopper SM (fused_mma.cu's budget,
    two blocks up to 4 n-tiles, one from 8), at least what any version of MmaShared takes, so
    that kernels of different versions (--kernels) can be compared."""
    return (228 // (2 if nt <= 4 else 1) - 1) * 1024


def resident_blocks(kernel, smem, sms, threads):
    regs = (kernel.num_regs + 7) // 8 * 8
    by_regs = 65536 // (regs * threads)
    by_smem = (228 * 1024) // (smem + 1024)
    return sms * max(1, min(by_regs, by_smem, 64 * 32 // threads))


def random_bf16(n, scale):
    x = cp.random.standard_normal(n, dtype=cp.float32) * scale
    return (x.view(cp.uint32) >> 16).astype(cp.uint16)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="8192x128256", help="DxV, comma-separated")
    ap.add_argument("--batches", default="1,16,64,128")
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--configs", default=";".join(CONFIGS), help="names separated by ';'")
    ap.add_argument("--kernels", default=str(KERNELS), help="directory of the kernel sources")
    ap.add_argument("--modes", default="sampled", help="sampled and/or greedy (every row at temperature 0)")
    ap.add_argument("--reference", help="a .npz of candidates: compared with when it exists, written otherwise")
    args = ap.parse_args()
    shapes = [tuple(map(int, s.split("x"))) for s in args.shapes.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    source = "".join((pathlib.Path(args.kernels) / f).read_text() for f in SOURCES)
    sms = cp.cuda.Device().attributes["MultiProcessorCount"]
    cc = cp.cuda.Device().compute_capability
    smem_limit = cp.cuda.Device().attributes["MaxSharedMemoryPerBlockOptin"]
    # One W, as large as the largest shape needs (smaller shapes use a prefix), and H per dimension,
    # scaled as the benchmark's synthetic head: logits with a standard deviation of about 2. Seeded
    # by what they depend on, so that every selection of shapes draws the same data.
    cp.random.seed(7)
    w = random_bf16(max(d * v for d, v in shapes), 1.0)
    hs = {}
    for d, _ in shapes:
        cp.random.seed(d)
        hs[d] = random_bf16(max(batches) * d, 2.0 / d**0.5)
    rows = np.zeros(max(batches), dtype=[("temperature", "<f4"), ("reserved", "<u4"), ("seed", "<u8"), ("offset", "<u8")])
    rows["seed"] = 0x1234 + np.arange(max(batches))
    rows["offset"] = 7
    modes = args.modes.split(",")
    row_tables = {}
    for mode in modes:
        rows["temperature"] = {"sampled": 1.0, "greedy": 0.0}[mode]
        row_tables[mode] = cp.asarray(rows.view(np.uint8))
    out = cp.zeros(max(batches), dtype=cp.uint64)
    print(f"{sms} SMs, sm_{cc}; floor at 3.0 TB/s: " + ", ".join(f"({d}, {v}) {v * d * 2 / 3.0e12 * 1e6:.1f} µs" for d, v in shapes))
    print(f"{'config':<26}{'shape':>14}" + "".join(f"{'B=' + str(b):>12}" for b in batches) + "   regs (n1 n2 n4 n8 n16)")
    saved = pathlib.Path(args.reference) if args.reference else None
    reference = {}
    if saved and saved.exists():
        reference = {tuple(int(x) if x.isdigit() else x for x in k.split("_")): v for k, v in np.load(saved).items()}
    for name in args.configs.split(";"):
        defines = CONFIGS[name]
        warps = defines.get("MMA_WARPS", 8)
        options = ("--std=c++17", f"--gpu-architecture=sm_{cc}a" if cc == "90" else f"--gpu-architecture=sm_{cc}")
        options += tuple(f"-D{k}={v}" for k, v in defines.items() if not k.startswith("_"))
        module = cp.RawModule(code=source, options=options, backend="nvrtc")
        kernels = {}
        for nt in N_TILES:
            k = module.get_function(f"fused_mma_Bf16_n{nt}")
            smem = shared_bytes(nt)
            if smem > smem_limit:
                kernels[nt] = None
                continue
            k.max_dynamic_shared_size_bytes = smem
            threads = 32 * (warps + defines.get("MMA_EPI_WARPS", 8))
            kernels[nt] = (k, smem, threads, resident_blocks(k, smem, sms, threads))
        regs = " ".join(str(kernels[nt][0].num_regs) if kernels[nt] else "-" for nt in N_TILES)
        for (dim, vocab), mode in ((shape, mode) for shape in shapes for mode in modes):
            line = f"{name + ' ' + mode:<26}{f'{dim}x{vocab}':>14}"
            for b in batches:
                nt = next(n for n in N_TILES if 8 * n >= b)
                if kernels[nt] is None:
                    line += f"{'no smem':>12}"
                    continue
                k, smem, threads, blocks = kernels[nt]
                tiles = (vocab + 15) // 16
                if defines.get("_grid") == "steps":
                    blocks = -(-tiles // warps)
                blocks = min(blocks, tiles)
                params = (w, hs[dim], row_tables[mode], out, np.uint32(vocab), np.uint32(dim), np.uint32(b), np.uint32(1), np.uint32(0))

                def launch():
                    out[:b].fill(0)
                    k((blocks,), (threads,), params, shared_mem=smem)

                for _ in range(10):
                    launch()
                got = out[:b].get()
                key = (dim, vocab, b, mode)
                if key in reference and not np.array_equal(reference[key], got):
                    line += f"{'MISMATCH':>12}"
                    continue
                reference.setdefault(key, got)
                # Back to back, as a decode loop launches them: the mean of 10 launches, `iters` times.
                times = []
                for _ in range(args.iters):
                    start, end = cp.cuda.Event(), cp.cuda.Event()
                    start.record()
                    for _ in range(10):
                        launch()
                    end.record()
                    end.synchronize()
                    times.append(cp.cuda.get_elapsed_time(start, end) * 1e3 / 10)
                line += f"{statistics.median(times):>12.1f}"
            print(line + "   " + regs, flush=True)
    if saved and not saved.exists():
        np.savez(saved, **{"_".join(map(str, k)): v for k, v in reference.items()})


if __name__ == "__main__":
    main()
