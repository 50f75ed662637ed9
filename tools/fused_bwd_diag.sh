#!/bin/bash
# Knockouts of the portable work-group dK/dV kernel (na_fused_bwd.cl) on the GPU machine, after
# tools/gpu_session.sh build: copies of cl_kernels with one part replaced, each timed on
# PRESETS (f32, fused variant, backward; its default configuration) through OPENNA_KERNEL_DIR,
# alternating with the unchanged files. Results are wrong by design; only times count.
#   none     the files as they are
#   noqo     the query chunk's Q and dO rows not read from global memory (an index-valued
#            stand-in instead): what their loads' latency and traffic cost
#   nometa   the chunk's lse and D not read either
set -uo pipefail
B=build-gpu
OUT=${OUT:-/tmp/out}
export OPENNA_DEVICE=nvidia OPENNA_DISK_CACHE=0
f=na_fused_bwd.cl
mk() {
  rm -rf "/tmp/fbd/$1" && mkdir -p "/tmp/fbd/$1" && cp cl_kernels/* "/tmp/fbd/$1/"
}
mk none
mk noqo
sed -i 's|? LOADF(q, row \* hd + d) : 0.0f;|? (float)(d + qq) * 1e-3f : 0.0f;|; s|? LOADF(d_out, row \* hdv + d) : 0.0f;|? (float)(d - qq) * 1e-3f : 0.0f;|' /tmp/fbd/noqo/$f
mk nometa
cp /tmp/fbd/noqo/$f /tmp/fbd/nometa/$f
sed -i 's|lse_q\[qq\] = lse\[qrow\] \* LOG2E;|lse_q[qq] = (float)qrow * 1e-9f;|; s|d_q_\[qq\] = delta\[qrow\];|d_q_[qq] = 0.5f;|' /tmp/fbd/nometa/$f
for n in noqo nometa; do
  cmp -s /tmp/fbd/none/$f /tmp/fbd/$n/$f && echo "knockout $n did not apply" >&2
done
for round in 1 2; do
  for p in ${PRESETS:-flux-2d}; do
    for n in none noqo nometa; do
      line=$(OPENNA_KERNEL_DIR=/tmp/fbd/$n $B/bench/openna-bench run --device nvidia --preset $p \
        --dtype f32 --variant fused --pass bwd --no-baselines --no-probe --repeat ${REPEAT:-10} \
        -q 2>&1 | grep -E "na_bwd|kernels|rror" | awk '/kernels/ {print "[" $8, $9, $10, $11, $12 "]"; next} {print $9}' | tr '\n' ' ')
      echo "$round $p $n $line"
    done
  done
done | tee "$OUT/fused_bwd_diag.log"
