#!/bin/bash
# The WG forward's same-shape fault (docs/PERFORMANCE.md, 2026-11-26 session 5): long-1d-causal's
# WG forward checked as shipped (S in pieces of WG_SN = 32 keys) and with S unsplit (one m64n64
# product, the shape of P V), and the PTX of both programs in $OUT/ptx_same_shape.tgz.
# Run on the GPU machine from the repository root after tools/gpu_session.sh build.
set -u
B=build-gpu
OUT=${OUT:-/tmp/out}
K=/tmp/kx
rm -rf $K /tmp/ptx_split /tmp/ptx_whole
cp -r cl_kernels $K
sed -i 's/^#define WG_SN 32$/#define WG_SN 64/' $K/na_wgmma.h
mkdir -p /tmp/ptx_split /tmp/ptx_whole
CFG=${CFG:-TQ0=128,TQ1=1,TQ2=1,NW=8,TK=64,STAGES=2,MAXREG=128,WG=1}
for mode in split whole; do
  dir=$PWD/cl_kernels
  [ $mode = whole ] && dir=$K
  echo "== $mode"
  OPENNA_KERNEL_DIR=$dir OPENNA_DISK_CACHE=0 OPENNA_DUMP_BINARIES=/tmp/ptx_$mode \
    $B/bench/openna-bench run --device nvidia --preset long-1d-causal --dtype f16 --variant mma \
    --pass fwd --config $CFG --check --no-baselines --no-probe --repeat 3 -q 2>&1 |
    grep -E "check|rror|na_fwd" | cut -c1-220
done
tar czf "$OUT/ptx_same_shape.tgz" -C /tmp ptx_split ptx_whole
