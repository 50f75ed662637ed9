#!/bin/bash
# Where the mma.sync dK/dV kernel's time goes (GPU machine, after tools/gpu_session.sh build):
# copies of cl_kernels with one part of na_mma_bwd.cl's chunk loop removed, timed by wg_ab.sh
# against the original on CONFIG_LIST (results are wrong by construction; times only).
#   nomma: every mma.sync of the dK/dV kernel replaced by one dependent FADD
#   noexp: the exponential of P^T replaced by its argument
set -u
list=$1
rm -rf /tmp/anat && mkdir -p /tmp/anat
for v in nomma noexp; do cp -r cl_kernels /tmp/anat/$v; done
sed -i 's|#include "na_tile.h"|#include "na_tile.h"\n#undef MMA_16816\n#define MMA_16816(d, a0, a1, a2, a3, b0, b1) ((d)[0] += as_float((a0) ^ (b1)))|' \
  /tmp/anat/nomma/na_mma_bwd.cl
sed -i 's|na_exp2(s\[m\]\[j\]\[e\] \* sscale - lse2)|(s[m][j][e] * sscale - lse2)|' \
  /tmp/anat/noexp/na_mma_bwd.cl
bash tools/wg_ab.sh base=$PWD/cl_kernels nomma=/tmp/anat/nomma noexp=/tmp/anat/noexp -- "$list"
