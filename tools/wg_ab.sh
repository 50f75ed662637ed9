#!/bin/bash
# A/B of kernel files (VARIANT: mma by default) on the GPU machine (after tools/gpu_session.sh build):
#   tools/wg_ab.sh NAME=DIR... -- CONFIG_LIST
# Each DIR holds a copy of cl_kernels with one file changed; each config line of CONFIG_LIST
# (as for gpu_session.sh configs) runs once per DIR, alternating; the PTX of each (DIR, config)
# goes through ptxas (sm_90a) for registers, spills, warnings and an instruction count; a
# backward's line shows its kernels' medians in brackets.
# KEEP_PTX=1 brings the dumped PTX of every run back as $OUT/ptx_ab.tgz.
set -uo pipefail
B=build-gpu
OUT=${OUT:-/tmp/out}
dirs=()
while [ "$1" != "--" ]; do dirs+=("$1"); shift; done
shift
list=$1
rm -rf /tmp/ptx_keep # KEEP_PTX: this run's PTX only
export OPENNA_DEVICE=nvidia OPENNA_DISK_CACHE=0 PATH=$PATH:/usr/local/cuda/bin
while read -r p dt pass cfg; do
  [ -z "$p" ] || [ "${p#\#}" != "$p" ] && continue
  for nd in "${dirs[@]}"; do
    name=${nd%%=*}; dir=${nd#*=}
    rm -rf /tmp/ptx_ab && mkdir -p /tmp/ptx_ab
    line=$(OPENNA_KERNEL_DIR=$dir OPENNA_DUMP_BINARIES=/tmp/ptx_ab \
      $B/bench/openna-bench run --device nvidia --preset $p --dtype $dt --variant ${VARIANT:-mma} --pass $pass \
      ${cfg:+$( [ "$cfg" != - ] && echo --config $cfg)} --no-baselines --no-probe \
      --repeat ${REPEAT:-20} -q 2>&1 | grep -E "na_(fwd|bwd)|kernels|rror" |
      awk '/kernels/ {print "[" $7, $8, $9, $10, $11, $12, $13 "]"; next} {print $7, $10}' |
      tr '\n' ' ')
    regs=""
    # KEEP_PTX=1: the dumped PTX of each (DIR, config) into $OUT/ptx_ab.tgz (at the end)
    if [ "${KEEP_PTX:-0}" = 1 ]; then
      k=/tmp/ptx_keep/$name.$p.$dt.$(echo "$cfg" | md5sum | cut -c1-8)
      mkdir -p "$k" && cp /tmp/ptx_ab/*.bin "$k"/ 2>/dev/null
    fi
    for f in /tmp/ptx_ab/*.bin; do
      [ -e "$f" ] || continue
      case "$f" in *probe*) continue ;; esac
      # standalone ptxas reads neither the driver's .metadata_section nor the trailing NUL
      tr -d '\000' < "$f" | sed '/^\.metadata_section {/,$d; s/, texmode_independent//' > /tmp/ab.ptx
      arch=$(grep -q "sm_90a" /tmp/ab.ptx && echo sm_90a || echo sm_90)
      st=$(ptxas -arch=$arch -v /tmp/ab.ptx -o /tmp/ab.cubin 2>&1 | grep -E "registers|spill|C75" |
        sed -E 's/ptxas (info|warning) *: *//; s/Used ([0-9]+) registers.*/\1 regs/' | tr '\n' ' ' | cut -c1-160)
      mix=$(cuobjdump -sass /tmp/ab.cubin 2>/dev/null | grep -oE "HGMMA|HMMA|LDSM|MUFU\.EX2|BAR\.SYNC|LDL|STL" | sort | uniq -c | tr -s ' \n' ' ')
      regs="$regs {$(basename "$f" .bin | cut -c1-40): $st |$mix}"
    done
    echo "$name $p $dt $line | $regs"
  done
done < "$list" | tee -a "$OUT/ab.log"
# (an if: as the last command, a false test would be the script's exit status)
if [ "${KEEP_PTX:-0}" = 1 ] && [ -d /tmp/ptx_keep ]; then
  tar czf "$OUT/ptx_ab.tgz" -C /tmp ptx_keep
fi
