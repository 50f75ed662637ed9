#!/usr/bin/env python3
"""PyTorch baselines for openna-bench's presets on a CUDA GPU: FlexAttention with a mask_mod that
encodes SPEC.md's neighborhood (forward and backward), and dense SDPA (flash) on the same shapes.
Times are medians of CUDA-event timings after warm-up; prints a table and writes JSON.

  python3 tools/flex_bench.py [--presets flux-2d,...] [--dtypes f16,bf16,f32] [--json out.json]
"""
import argparse
import json
import math
import sys

import torch
import torch._functorch.config
import torch.nn.functional as F
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

# name: (shape, kernel, dilation, causal, heads, head_dim)  -- batch 1, as openna-bench's presets
PRESETS = {
    "flux-2d": ((64, 64), (17, 17), (1, 1), (0, 0), 24, 128),
    "vision-2d": ((128, 128), (13, 13), (1, 1), (0, 0), 16, 64),
    "vision-2d-dilated": ((128, 128), (13, 13), (4, 4), (0, 0), 16, 64),
    "video-3d": ((16, 32, 32), (8, 16, 16), (1, 1, 1), (0, 0, 0), 24, 128),
    "long-1d-causal": ((32768,), (2048,), (1,), (1,), 16, 64),
}
DTYPES = {"f16": torch.float16, "bf16": torch.bfloat16, "f32": torch.float32}


def axis_in_window(qi, kj, L, K, s, d, causal):
    """SPEC.md section 2 on one axis, for index tensors (vmapped by FlexAttention)."""
    g, gk = qi % d, kj % d
    i, j = qi // d, kj // d
    lg = (L - g + d - 1) // d
    if causal:
        leader = torch.minimum((i // s) * s + s - 1, lg - 1)
        start = torch.clamp(leader - K + 1, min=0)
        end = i + 1
    else:
        leader = torch.minimum((i // s) * s + s // 2, lg - 1)
        start = torch.minimum(torch.clamp(leader - K // 2, min=0), lg - K)
        end = start + K
    return (g == gk) & (j >= start) & (j < end)


def na_mask_mod(shape, kernel, dilation, causal, stride=None):
    stride = stride or (1,) * len(shape)

    def coords(t):
        out = []
        for a in reversed(range(len(shape))):
            out.append(t % shape[a])
            t = t // shape[a]
        return list(reversed(out))

    def mask_mod(b, h, q_idx, kv_idx):
        qc, kc = coords(q_idx), coords(kv_idx)
        ok = None
        for a in range(len(shape)):
            m = axis_in_window(qc[a], kc[a], shape[a], kernel[a], stride[a], dilation[a],
                               bool(causal[a]))
            ok = m if ok is None else ok & m
        return ok

    return mask_mod


def time_ms(fn, warmup=3, repeat=10, batch=20):
    """GPU time per call: the median over `repeat` rounds of `batch` calls enqueued back to back
    between two CUDA events, divided by `batch`. Back to back, the host's per-call dispatch work
    (compiled-graph guards, launches) overlaps the GPU's work instead of adding to it, which is
    what openna-bench's kernel-event times measure too. A single call between two events also
    counts the host's dispatch time whenever the GPU waits for it: up to 1.7x more on the lent
    H100 for sub-millisecond calls, varying between runs (batch=1, reported as *_single)."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(batch):
            fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b) / batch)
    times.sort()
    return times[len(times) // 2]


def pairs(shape, kernel, dilation, causal):
    """Attended (query, key) pairs per (batch, head): product of per-axis sums of window sizes."""
    total = 1
    for L, K, d, c in zip(shape, kernel, dilation, causal):
        s = 0
        for q in range(L):
            i, g = q // d, q % d
            lg = (L - g + d - 1) // d
            if c:
                leader = min(i, lg - 1)
                s += i + 1 - max(leader - K + 1, 0)
            else:
                s += K
        total *= s
    return total


def run_sdpa_only(name, dtype_name):
    """Dense SDPA's forward alone (no mask to build, no FlexAttention): a quick same-call
    reference for the dense-fraction figures."""
    shape, kernel, dil, causal, H, D = PRESETS[name]
    N = math.prod(shape)
    q, k, v = (torch.randn(1, H, N, D, device="cuda", dtype=DTYPES[dtype_name]) for _ in range(3))
    row = {"preset": name, "dtype": dtype_name,
           "useful_flop_fwd": 4.0 * H * pairs(shape, kernel, dil, causal) * D,
           "sdpa_dense_fwd_ms": time_ms(lambda: F.scaled_dot_product_attention(q, k, v)),
           "dense_flop_fwd": 4.0 * H * N * N * D}
    row["sdpa_dense_fwd_tflops"] = row["dense_flop_fwd"] / row["sdpa_dense_fwd_ms"] * 1e-9
    return row


def run(name, dtype_name, do_bwd):
    shape, kernel, dil, causal, H, D = PRESETS[name]
    dtype = DTYPES[dtype_name]
    # A fresh compiler state per preset: flex_attention's compiled graphs are cached on its code
    # object across torch.compile wrappers, and past dynamo's recompile limit a later shape runs
    # uncompiled. On the lent H100 (torch 2.11, 2026-11-26) that made long-1d-causal, run fifth in
    # one process, 1.311 / 3.895 ms (forward / backward) against 0.850 / 2.560 alone, and
    # video-3d 13.95 / 30.49 against 8.647 / 20.59.
    torch._dynamo.reset()
    N = math.prod(shape)
    q, k, v = (torch.randn(1, H, N, D, device="cuda", dtype=dtype, requires_grad=do_bwd)
               for _ in range(3))
    # _compile: build the block mask without materializing N x N (long-1d-causal has N = 32768).
    mask = create_block_mask(na_mask_mod(shape, kernel, dil, causal), None, None, N, N,
                             device="cuda", _compile=True)
    flex = torch.compile(flex_attention)
    row = {"preset": name, "dtype": dtype_name,
           "useful_flop_fwd": 4.0 * H * pairs(shape, kernel, dil, causal) * D}
    row["flex_fwd_ms"] = time_ms(lambda: flex(q, k, v, block_mask=mask))
    row["flex_fwd_ms_single"] = time_ms(lambda: flex(q, k, v, block_mask=mask), batch=1)
    row["sdpa_dense_fwd_ms"] = time_ms(lambda: F.scaled_dot_product_attention(q, k, v))
    row["dense_flop_fwd"] = 4.0 * H * N * N * D
    if do_bwd:
        out = flex(q, k, v, block_mask=mask)
        dout = torch.randn_like(out)
        row["flex_bwd_ms"] = time_ms(
            lambda: torch.autograd.grad(out, (q, k, v), dout, retain_graph=True))
        row["flex_bwd_ms_single"] = time_ms(
            lambda: torch.autograd.grad(out, (q, k, v), dout, retain_graph=True), batch=1)
        outd = F.scaled_dot_product_attention(q, k, v)
        row["sdpa_dense_bwd_ms"] = time_ms(
            lambda: torch.autograd.grad(outd, (q, k, v), dout, retain_graph=True))
    row["flex_fwd_tflops"] = row["useful_flop_fwd"] / row["flex_fwd_ms"] * 1e-9
    row["sdpa_dense_fwd_tflops"] = row["dense_flop_fwd"] / row["sdpa_dense_fwd_ms"] * 1e-9
    return row


def main():
    # Timed backward calls reuse one graph (retain_graph); compiled backward graphs that donate
    # their buffers refuse that.
    torch._functorch.config.donated_buffer = False
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", default=",".join(PRESETS))
    ap.add_argument("--dtypes", default="f16,bf16,f32")
    ap.add_argument("--no-bwd", action="store_true")
    ap.add_argument("--bwd-dtypes", default="f16,bf16,f32",
                    help="dtypes whose backward is timed (the rest: forward only)")
    ap.add_argument("--sdpa-only", action="store_true",
                    help="dense SDPA's forward alone (no FlexAttention, no mask)")
    ap.add_argument("--json")
    args = ap.parse_args()
    rows = []
    for name in args.presets.split(","):
        for dt in args.dtypes.split(","):
            try:
                if args.sdpa_only:
                    r = run_sdpa_only(name, dt)
                else:
                    r = run(name, dt, not args.no_bwd and dt in args.bwd_dtypes.split(","))
            except Exception as e:  # report and go on: one failing shape must not hide the rest
                r = {"preset": name, "dtype": dt, "error": repr(e)[:300]}
            rows.append(r)
            print(json.dumps(r), flush=True)
            torch.cuda.empty_cache()
    print(f"\n{'preset':20} {'dtype':5} {'flex fwd ms':>11} {'flex bwd ms':>11} "
          f"{'flex TF/s':>9} {'sdpa dense fwd ms':>17} {'dense TF/s':>10}")
    for r in rows:
        if "error" in r:
            print(f"{r['preset']:20} {r['dtype']:5} error: {r['error'][:80]}")
            continue
        print(f"{r['preset']:20} {r['dtype']:5} {r.get('flex_fwd_ms', float('nan')):11.3f} "
              f"{r.get('flex_bwd_ms', float('nan')):11.3f} "
              f"{r.get('flex_fwd_tflops', float('nan')):9.1f} "
              f"{r['sdpa_dense_fwd_ms']:17.3f} {r['sdpa_dense_fwd_tflops']:10.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
