#!/bin/bash
# Registers, spills and ptxas warnings of an mma kernel without a GPU: a local stand-in for the
# NVIDIA driver's build (clang 15 + libclc for sm_80, retargeted to PTX 8.0 / sm_90a with the
# `// @sm_90a@` markers unwrapped as sm90a_rewrite does, then ptxas from PyPI's CUDA 12.9 nvcc
# wheel, fetched once into .cache/ptxas).
#   tools/local_ptxas.sh cl_kernels/na_mma_fwd.cl -DRANK=2 -DK0=17 ... [-DMMA_DQ=1 ...]
# Every define the host would pass must be given (see mma_options in src/variants/mma.cpp and
# compile_options in variant.cpp). MAXNREG=N caps registers as the host's MAXREG does. KEEP=DIR
# keeps the PTX and cubin there (and, with SASS=1, the SASS as sass.txt). SASS=1 also prints the
# SASS instruction count and its most frequent opcodes (cuobjdump and nvdisasm from PyPI's CUDA
# 13.5 wheels, fetched once into .cache/ptxas).
# Needs: clang-15 llvm-15 libclc-15 (apt), python3 with network access for the first run.
# It is a proxy: on the H100 (session 8) it reproduced the driver's C7517 warnings and the
# long-1d forward's 4-byte spill, but gave flux-2d's dK/dV kernel 255 registers and a 12-byte
# spill where the driver's build has 242 and none. Timings need the GPU.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
f=$1
shift
ptxas=$root/.cache/ptxas/ptxas
if [ ! -x "$ptxas" ]; then
  mkdir -p "$root/.cache/ptxas"
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps nvidia-cuda-nvcc-cu12==12.9.86 -d "$tmp"
  python3 - "$tmp" "$root/.cache/ptxas" <<'PY'
import glob, os, sys, zipfile
whl = glob.glob(os.path.join(sys.argv[1], "*.whl"))[0]
with zipfile.ZipFile(whl) as z:
    data = z.read("nvidia/cuda_nvcc/bin/ptxas")
out = os.path.join(sys.argv[2], "ptxas")
open(out, "wb").write(data)
os.chmod(out, 0o755)
PY
  rm -rf "$tmp"
fi
libclc=/usr/lib/clc/nvptx64--nvidiacl.bc
[ -f "$libclc" ] || { echo "missing $libclc (apt install libclc-15)" >&2; exit 1; }
work=${KEEP:-$(mktemp -d)}
mkdir -p "$work"
n=$(basename "$f" .cl)
# NVIDIA's compiler refuses variadic macros in OpenCL C 1.2, which clang 15 takes as an
# extension: an error here too.
clang-15 -x cl -cl-std=CL1.2 -target nvptx64-nvidia-nvcl -Xclang -target-cpu -Xclang sm_80 \
  -Werror=pedantic -D'NA_ASM=__asm__ __volatile__' -I"$(dirname "$f")" -O3 -emit-llvm -c -o "$work/$n.bc" "$f" "$@"
llvm-link-15 --only-needed "$work/$n.bc" "$libclc" -o "$work/$n.linked.bc" 2> >(grep -v "different target triples" >&2)
opt-15 -O3 "$work/$n.linked.bc" -o "$work/$n.opt.bc"
llc-15 -mcpu=sm_80 -O3 "$work/$n.opt.bc" -o "$work/$n.sm80.ptx"
# PTX ISA 8.3 where a marked line uses a tensormap instruction (tensormap.replace), as the host
ver=8.0
grep -q '// @sm_90a@ .*tensormap\.' "$work/$n.sm80.ptx" && ver=8.3
sed -E 's|^([ \t]*)// @sm_90a@ |\1|; s|^\.target sm_[0-9]+.*|.target sm_90a|; s|^\.version [0-9.]+|.version '"$ver"'|' \
  "$work/$n.sm80.ptx" > "$work/$n.ptx"
"$ptxas" -arch=sm_90a ${MAXNREG:+-maxrregcount "$MAXNREG"} -v "$work/$n.ptx" -o "$work/$n.cubin" 2>&1 |
  grep -E "Compiling|registers|spill|C75|error|fatal" | sed -E 's/ptxas (info|warning) *: *//'
if [ "${SASS:-0}" = 1 ]; then
  for tool in cuobjdump nvdisasm; do
    if [ ! -x "$root/.cache/ptxas/$tool" ]; then
      tmp=$(mktemp -d)
      python3 -m pip download --quiet --no-deps "nvidia-cuda-$tool==13.5.37" -d "$tmp"
      python3 - "$tmp" "$root/.cache/ptxas" "$tool" <<'PY'
import glob, os, sys, zipfile
whl = glob.glob(os.path.join(sys.argv[1], "*.whl"))[0]
with zipfile.ZipFile(whl) as z:
    name = [n for n in z.namelist() if n.endswith("/bin/" + sys.argv[3])][0]
    data = z.read(name)
out = os.path.join(sys.argv[2], sys.argv[3])
open(out, "wb").write(data)
os.chmod(out, 0o755)
PY
      rm -rf "$tmp"
    fi
  done
  PATH=$root/.cache/ptxas:$PATH cuobjdump -sass "$work/$n.cubin" 2>/dev/null |
    grep -E '^\s+/\*[0-9a-f]{4}\*/' | sed -E 's@/\* 0x[0-9a-f]+ \*/@@; s/ +/ /g; s/;//' > "$work/sass.txt"
  echo "SASS: $(wc -l < "$work/sass.txt") instructions; most frequent:"
  awk '{print $2}' "$work/sass.txt" | sed -E 's/^@!?U?P[0-9T]//; /^$/d' | sort | uniq -c |
    sort -rn | head -12 | tr -s ' \n' ' '
  echo
fi
[ -n "${KEEP:-}" ] || rm -rf "$work"
