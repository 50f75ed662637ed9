#!/bin/bash
# SASS of the programs one bench run builds (GPU machine, after tools/gpu_session.sh build):
#   tools/sass_of.sh PRESET PASS CONFIG OUTDIR
# Each program's PTX goes through ptxas (-maxrregcount from the configuration's MAXREG or
# KMAXREG is not applied: the driver's compilation takes it from the build options) and
# cuobjdump; OUTDIR gets <program>.sass and an instruction histogram <program>.mix.
set -u
B=build-gpu
D=$(mktemp -d)
mkdir -p "$4"
OPENNA_DISK_CACHE=0 OPENNA_DUMP_BINARIES=$D $B/bench/openna-bench run --device nvidia \
  --preset "$1" --dtype f16 --variant mma --pass "$2" --config "$3" --no-baselines --no-probe \
  --repeat 1 -q > /dev/null 2>&1
for f in "$D"/*.bin; do
  case "$f" in *probe*) continue ;; esac
  n=$(basename "$f" .bin)
  tr -d '\000' < "$f" | sed '/^\.metadata_section {/,$d; s/, texmode_independent//' > "$D/p.ptx"
  arch=$(grep -q "sm_90a" "$D/p.ptx" && echo sm_90a || echo sm_90)
  ptxas -arch=$arch -v "$D/p.ptx" -o "$D/p.cubin" > "$4/$n.ptxas" 2>&1
  cuobjdump -sass "$D/p.cubin" > "$4/$n.sass"
  grep -oE "^ +/\*[0-9a-f]+\*/ +[A-Z0-9_.]+" "$4/$n.sass" | awk '{print $2}' | sed -E 's/\..*//' |
    sort | uniq -c | sort -rn > "$4/$n.mix"
done
rm -rf "$D"
