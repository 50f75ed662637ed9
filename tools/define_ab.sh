#!/bin/bash
# A/B of kernel defines on the GPU machine (after tools/gpu_session.sh build): copies of
# cl_kernels whose FILE (na_mma_fwd.cl by default) starts with the defines of each variant, timed
# by wg_ab.sh against the original on CONFIG_LIST (config lines as for gpu_session.sh configs).
#   VARIANTS="off:MASK_SPLIT_0;V_LATE_0 late:LATE_LOADS_1" tools/define_ab.sh CONFIG_LIST
# (a variant: name:DEFINE_VALUE items joined by ';', the first '_' of each the space)
set -u
rm -rf /tmp/ab && mkdir -p /tmp/ab
args=(base=$PWD/cl_kernels)
IFS=' ' read -r -a vs <<< "$VARIANTS"
for nv in "${vs[@]}"; do
  n=${nv%%:*}
  cp -r cl_kernels /tmp/ab/$n
  echo "${nv#*:}" | tr ';' '\n' | sed 's/^/#define /; s/_\([^_]*\)$/ \1/' > /tmp/ab/hdr.txt
  echo "$n: $(tr '\n' ' ' < /tmp/ab/hdr.txt)" # what each variant defines, to be read back
  f=/tmp/ab/$n/${FILE:-na_mma_fwd.cl}
  cat /tmp/ab/hdr.txt "$f" > /tmp/ab/x && mv /tmp/ab/x "$f"
  args+=("$n=/tmp/ab/$n")
done
bash tools/wg_ab.sh "${args[@]}" -- "$1"
