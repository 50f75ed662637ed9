#!/bin/bash
# A/B of mma kernel files on the GPU machine (after tools/gpu_session.sh build):
#   tools/wg_ab.sh NAME=DIR... -- CONFIG_LIST
# Each DIR holds a copy of cl_kernels with one file changed; each config line of CONFIG_LIST
# (as for gpu_session.sh configs) runs once per DIR, alternating; the PTX of each (DIR, config)
# goes through ptxas (sm_90a) for registers, spills and warnings (forward programs only); a
# backward's line shows its kernels' medians in brackets.
set -uo pipefail
B=build-gpu
OUT=${OUT:-/tmp/out}
dirs=()
while [ "$1" != "--" ]; do dirs+=("$1"); shift; done
shift
list=$1
export OPENNA_DEVICE=nvidia OPENNA_DISK_CACHE=0 PATH=$PATH:/usr/local/cuda/bin
while read -r p dt pass cfg; do
  [ -z "$p" ] || [ "${p#\#}" != "$p" ] && continue
  for nd in "${dirs[@]}"; do
    name=${nd%%=*}; dir=${nd#*=}
    rm -rf /tmp/ptx_ab && mkdir -p /tmp/ptx_ab
    line=$(OPENNA_KERNEL_DIR=$dir OPENNA_DUMP_BINARIES=/tmp/ptx_ab \
      $B/bench/openna-bench run --device nvidia --preset $p --dtype $dt --variant mma --pass $pass \
      ${cfg:+$( [ "$cfg" != - ] && echo --config $cfg)} --no-baselines --no-probe \
      --repeat ${REPEAT:-20} -q 2>&1 | grep -E "na_(fwd|bwd)|kernels|rror" |
      awk '/kernels/ {print "[" $7, $8, $9, $10, $11, $12, $13 "]"; next} {print $7, $10}' |
      tr '\n' ' ')
    f=$(ls /tmp/ptx_ab/na_fwd* 2>/dev/null | head -1)
    regs=""
    if [ -n "$f" ]; then
      # standalone ptxas reads neither the driver's .metadata_section nor the trailing NUL
      tr -d '\000' < "$f" | sed '/^\.metadata_section {/,$d; s/, texmode_independent//' > /tmp/ab.ptx
      regs=$(ptxas -arch=$(grep -q "sm_90a" /tmp/ab.ptx && echo sm_90a || echo sm_90) -v /tmp/ab.ptx -o /tmp/ab.cubin 2>&1 | \
        grep -vE "Compiling|Function properties|Compile time" | tr '\n' ' ' | cut -c1-300)
      mix=$(cuobjdump -sass /tmp/ab.cubin 2>/dev/null | grep -oE "HGMMA|HMMA|MUFU\.EX2|WARPGROUP\.DEPBAR|WARPGROUP\.ARRIVE|BAR\.SYNC|LDL|STL" | sort | uniq -c | tr -s ' \n' ' ')
      regs="$regs | $mix"
    fi
    echo "$name $p $dt $line | $regs"
  done
done < "$list" | tee -a "$OUT/ab.log"
