#!/bin/bash
# ptxas statistics (registers, spills, wgmma warnings) of the programs one bench run builds:
#   tools/ptx_of.sh PRESET PASS CONFIG   (on the GPU machine, after tools/gpu_session.sh build)
# Standalone ptxas reads neither the driver's .metadata_section nor the trailing NUL of the
# dumped PTX; both are stripped first.
set -u
B=build-gpu
D=$(mktemp -d)
OPENNA_DISK_CACHE=0 OPENNA_DUMP_BINARIES=$D $B/bench/openna-bench run --device nvidia \
  --preset "$1" --dtype f16 --variant mma --pass "$2" --config "$3" --no-baselines --no-probe \
  --repeat 1 -q > /dev/null 2>&1
for f in "$D"/*.bin; do
  case "$f" in *probe*) continue ;; esac
  tr -d '\000' < "$f" | sed '/^\.metadata_section {/,$d; s/, texmode_independent//' > "$D/p.ptx"
  arch=$(grep -q "sm_90a" "$D/p.ptx" && echo sm_90a || echo sm_90)
  echo "== $(basename "$f" .bin): $(ptxas -arch=$arch -v "$D/p.ptx" -o /dev/null 2>&1 |
    grep -E "registers|spill|C75" | sed -E 's/ptxas (info|warning) *: *//' | tr '\n' ' ' | cut -c1-300)"
done
rm -rf "$D"
