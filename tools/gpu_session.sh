#!/bin/bash
# Work on the lent GPU machine (see docs/PERFORMANCE.md, "How we measure"): run from the
# repository root there, after `. .device-kit/env.sh`. Steps, in order, any subset:
#   build   configure and build (build-gpu/, Release, all cores)
#   probe   devices, and the mma probe/gate test
#   test    the kernel suites on the NVIDIA device (TESTS: the programs, FILTER: a gtest filter;
#           the parameterized suites are named Quick/MmaRandom.*, Quick/MmaAdversarial.*, ...)
#   bench   openna-bench on the presets (PRESETS, VARIANTS, DTYPES, PASS; a call of several
#           kernels also prints each kernel's median)
#   configs openna-bench on the (preset, dtype, pass, config) lines of CONFIG_LIST (variant
#           CONFIG_VARIANT, mma by default)
#   tune    openna-bench tune on the presets (TUNE_PRESETS, TUNE_PASSES, DTYPES' first; the
#           database goes to $OUT/tuning.json, every candidate's line to $OUT/tune.log)
#   flex    FlexAttention and SDPA on the same presets (tools/flex_bench.py; FLEX_DTYPES,
#           FLEX_PRESETS, FLEX_ARGS: e.g. "--no-bwd", or "--sdpa-only" for dense SDPA alone in
#           seconds: Flex's 2-D and 3-D masks take minutes to build)
#   ptx     dump each program's PTX and print ptxas register/spill statistics
#   dq5     the fused variant's backward (DTYPES' first, f32 by default) on PRESETS with its
#           default configuration and with the other product count (DQ=1, the work-group
#           form's 5 products, or DQ=0), alternating, each with its kernels' medians
# Logs go to $OUT (the device tool brings them back).
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
B=build-gpu
export OPENNA_DEVICE=${OPENNA_DEVICE:-nvidia}
export OPENNA_CACHE_DIR=${OPENNA_CACHE_DIR:-/tmp/openna-cache}
for step in "$@"; do
  case "$step" in
    build)
      cmake -S . -B $B -DCMAKE_BUILD_TYPE=Release > "$OUT/build.log" 2>&1 &&
        cmake --build $B -j"$(nproc)" -- -k >> "$OUT/build.log" 2>&1 || grep -E " error|Error " "$OUT/build.log" | head -20
      echo "build ok" ;;
    probe)
      $B/bench/openna-bench devices 2>&1 | tee "$OUT/devices.txt"
      $B/tests/test_mma --gtest_filter='MmaGate*' 2>&1 | tail -15 ;;
    test)
      # The test programs themselves, in parallel (ctest names are the gtest names). A bare '*'
      # among FILTER's patterns selects every test (session 22 lost two calls' tests to it).
      case ":${FILTER:-}:" in
        *":*:"*) echo "gpu_session.sh: FILTER holds a bare '*': every test runs (TEST_TIMEOUT ${TEST_TIMEOUT:-400} s)" ;;
      esac
      for t in ${TESTS:-test_mma test_fused test_fused_bwd test_api}; do
        (timeout ${TEST_TIMEOUT:-400} $B/tests/$t ${FILTER:+--gtest_filter=$FILTER} \
           > "$OUT/$t.log" 2>&1; echo "$t exit $?" >> "$OUT/$t.log") &
      done
      wait
      for t in ${TESTS:-test_mma test_fused test_fused_bwd test_api}; do
        echo "== $t: $(grep -E '^\[  (PASSED|FAILED) ' "$OUT/$t.log" | tr '\n' ' ') $(tail -1 "$OUT/$t.log")"
        # FILTER applies to every program of TESTS: one whose names it misses runs nothing
        # (session 23: test_api ran 0 tests under test_mma's filter)
        grep -qE '^\[==========\] 0 tests' "$OUT/$t.log" && echo "gpu_session.sh: FILTER selects no test of $t"
        grep -E '^\[  FAILED  \]' "$OUT/$t.log" | head -8 | cut -c1-200
      done ;;
    bench)
      for dt in ${DTYPES:-f16 bf16}; do
        for p in ${PRESETS:-flux-2d vision-2d vision-2d-dilated video-3d long-1d-causal}; do
          # checked JSON only with BENCH_JSON=1 (the device tool returns at most 8 files)
          [ "${BENCH_JSON:-0}" = 1 ] && $B/bench/openna-bench run --device nvidia --preset $p \
            --dtype $dt --variant ${VARIANTS:-mma,fused} --pass ${PASS:-fwd} --check \
            --no-baselines --repeat 20 --json -q > "$OUT/bench_${p}_${dt}.json" 2>> "$OUT/bench.err"
          $B/bench/openna-bench run --device nvidia --preset $p --dtype $dt \
            --variant ${VARIANTS:-mma,fused} --pass ${PASS:-fwd} --no-baselines --no-probe \
            --repeat 20 -q 2>&1 | grep -E "na_(fwd|bwd)|kernels" | cut -c1-400
        done
      done ;;
    configs)
      # One bench row per line of $CONFIG_LIST: "preset dtype pass config" (the config as
      # --config takes it; "-" for the dispatcher's choice; "+KEY=V,..." for the dispatcher's
      # choice with these added), each with its kernels' times;
      # CHECK=1 checks each against the host reference too (bench --check).
      while read -r p dt pass cfg; do
        [ -z "$p" ] || [ "${p#\#}" != "$p" ] && continue
        if [ "${cfg#+}" != "$cfg" ]; then  # "+KEY=V,...": the default configuration plus these
          base=$($B/bench/openna-bench run --device nvidia --preset $p --dtype $dt \
            --variant ${CONFIG_VARIANT:-mma} --pass $pass --no-baselines --no-probe --repeat 1 -q \
            2>&1 | awk '/na_(fwd|bwd)/ {print $7; exit}')
          cfg="$base,${cfg#+}"
        fi
        $B/bench/openna-bench run --device nvidia --preset $p --dtype $dt --variant ${CONFIG_VARIANT:-mma} \
          --pass $pass ${cfg:+$( [ "$cfg" != - ] && echo --config $cfg)} --no-baselines \
          --no-probe --repeat ${REPEAT:-20} ${CHECK:+--check} -q 2>&1 | \
          grep -E "na_(fwd|bwd)|kernels|rror|check|FAIL|ok \(" | \
          cut -c1-400
      done < "$CONFIG_LIST" | tee -a "$OUT/configs.log" ;;
    tune)
      export OPENNA_TUNING_DB=${OPENNA_TUNING_DB:-$OUT/tuning.json}
      dt=${DTYPES:-f16}; dt=${dt%% *}
      for pass in ${TUNE_PASSES:-fwd bwd}; do
        for p in ${TUNE_PRESETS:-flux-2d vision-2d vision-2d-dilated video-3d long-1d-causal}; do
          $B/bench/openna-bench tune --device nvidia --preset $p --dtype $dt \
            --variant ${VARIANTS:-mma} --pass $pass --warmup 2 --repeat ${TUNE_REPEAT:-10} \
            > /tmp/tune_one.log 2>&1
          cat /tmp/tune_one.log >> "$OUT/tune.log"
          echo "== tune $p $pass: $(grep -E "^  best" /tmp/tune_one.log | cut -c1-200)"
        done
      done ;;
    flex)
      PYTHONUNBUFFERED=1 python3 tools/flex_bench.py --dtypes "${FLEX_DTYPES:-f16,bf16}" \
        ${FLEX_PRESETS:+--presets $FLEX_PRESETS} ${FLEX_ARGS:-} --json "$OUT/flex_${FLEX_DTYPES:-f16,bf16}.json" \
        > "$OUT/flex.log" 2>&1
      tail -14 "$OUT/flex.log" ;;
    ptx)
      mkdir -p /tmp/ptx && rm -f /tmp/ptx/*
      for p in ${PTX_PRESETS:-vision-2d}; do
        OPENNA_DISK_CACHE=0 OPENNA_DUMP_BINARIES=/tmp/ptx OPENNA_BUILD_LOG=1 \
          $B/bench/openna-bench run --device nvidia --preset $p \
          --variant ${VARIANTS:-mma,fused} --pass ${PASS:-fwd} --no-baselines --no-probe \
          --repeat 1 -q >> "$OUT/ptx_run.log" 2>&1
      done
      grep -E "^openna: built|registers|spill|stack" "$OUT/ptx_run.log" | grep -v probe | cut -c1-160
      for f in /tmp/ptx/*.bin; do
        echo "== $(basename "$f")"
        ptxas -arch=sm_90 -v "$f" -o /dev/null 2>&1 | grep -E "registers|spill|error" | head -6
      done | tee "$OUT/ptxas.txt"
      tar czf "$OUT/ptx.tgz" -C /tmp ptx ;;
    dq5)
      dt=${DTYPES:-f32}; dt=${dt%% *}
      for p in ${PRESETS:-vision-2d vision-2d-dilated flux-2d}; do
        run5() {
          $B/bench/openna-bench run --device nvidia --preset $p --dtype $dt --variant fused \
            --pass bwd --no-baselines --no-probe --repeat ${REPEAT:-10} -q "$@" 2>&1 |
            grep -E "na_bwd|kernels|rror" | cut -c1-250
        }
        line=$(run5)
        echo "$line"
        cfg=$(echo "$line" | awk '/na_bwd/ {print $7; exit}')
        # the other form: DQ=1 appended, or the default's DQ=1 turned to DQ=0
        case "$cfg" in
          *DQ=1*) other=${cfg/DQ=1/DQ=0} ;;
          *) other="$cfg,DQ=1" ;;
        esac
        [ -n "$cfg" ] && run5 --config "$other"
      done | tee -a "$OUT/dq5.log" ;;
    *) echo "unknown step $step"; exit 2 ;;
  esac
done
