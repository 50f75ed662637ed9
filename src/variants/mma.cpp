// Host side of the mma variant: gating (vendor, compute capability, dtype, head dims, the
// probe), tile configurations, launch. See cl_kernels/na_mma_fwd.cl for the kernel.
#include "variants/mma.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "core/errors.hpp"
#include "core/half.hpp"
#include "variants/fused.hpp"

namespace openna {

namespace {

constexpr const char* kFwdFile = "na_mma_fwd.cl";  // also the backward's dQ (MMA_DQ=1)
constexpr const char* kBwdFile = "na_mma_bwd.cl";  // the backward's dK/dV
constexpr const char* kProbeFile = "na_mma_probe.cl";

struct MmaTile {
  int tq[3] = {64, 1, 1};
  int nw = 4, tk = 32, stages = 2;
  int mw = 1;      // 16-row blocks per warp (1 or 2)
  int maxreg = 0;  // NVIDIA's -cl-nv-maxrregcount (0: the compiler's choice)
  int wg = 0;      // 1: the kernel's products by wgmma (Hopper, compute capability 9.0)
  int rot = 0;     // forward WG tiles only: 1 = the rotated loop (P V of chunk c - 1 runs on
                   // during chunk c's softmax; na_mma_fwd.cl's ROT), 2 = also the second
                   // warpgroup half a pass behind (rank 1, NW=8)
  int split = 0;   // dK/dV kernel only: 1 = a dV kernel and a dK kernel (WG tiles)
  int qsub = 0;    // dK/dV kernel only (mma.sync): query rows per compute step (0: the chunk's)
  int seq = 0;     // dK/dV kernel only (mma.sync): 1 = S, P, dV before dP, dS, dK
  int kvreg = -1;  // dK/dV kernel only: K and V fragments in registers (-1: by head dims)
  int rmeta = 0;   // dK/dV kernel only (mma.sync): chunk metadata in registers, not local memory
  int ws = 0;      // dK/dV kernel only (WG): warp-specialized, a producer warpgroup beside NW warps
  int tma = 0;     // forward and dQ kernel (WG, rank 1), forward (ranks 2 and 3): K and V chunks
                   // by the TMA (na_sm90.h; at ranks 2 and 3 boxes of keys: chunk_box)
  int persist = 0;  // forward with chunk boxes only: persistent work-groups, this many a compute
                    // unit, each drawing tiles from the context's counter and starting the next
                    // after its tile's last pass (na_mma_fwd.cl's PERSIST); 0: one a tile
  // Whether the dK/dV kernel keeps its K and V fragments in registers (na_mma_bwd.cl's KV_REGS).
  bool kv_regs(int hdp, int hdvp) const {
    return kvreg >= 0 ? kvreg == 1 : (hdp + hdvp) * mw <= 128;
  }
  int bq() const { return tq[0] * tq[1] * tq[2]; }
  int rows() const { return 16 * mw * nw; }  // what the box must hold
  int nt() const { return 32 * (nw + (ws ? 4 : 0)); }
};

MmaTile tile_of(const Config& c) {
  MmaTile t;
  t.tq[0] = c.get("TQ0", 64);
  t.tq[1] = c.get("TQ1", 1);
  t.tq[2] = c.get("TQ2", 1);
  t.nw = c.get("NW", 4);
  t.tk = c.get("TK", 32);
  t.stages = c.get("STAGES", 2);
  t.mw = c.get("MW", 1);
  t.maxreg = c.get("MAXREG", 0);
  t.wg = c.get("WG", 0);
  t.rot = c.get("ROT", 0);
  t.tma = c.get("TMA", 0);
  t.persist = c.get("PERSIST", 0);
  return t;
}

Config config_of(const MmaTile& t) {
  Config c;
  c.set("TQ0", t.tq[0]);
  c.set("TQ1", t.tq[1]);
  c.set("TQ2", t.tq[2]);
  c.set("NW", t.nw);
  c.set("TK", t.tk);
  c.set("STAGES", t.stages);
  if (t.mw != 1) c.set("MW", t.mw);
  if (t.maxreg) c.set("MAXREG", t.maxreg);
  if (t.wg) c.set("WG", t.wg);
  if (t.rot) c.set("ROT", t.rot);
  if (t.tma) c.set("TMA", t.tma);
  if (t.persist) c.set("PERSIST", t.persist);
  return c;
}

// The backward's dK/dV kernel may run a tile of its own (the best shapes of the two kernels
// differ: the dK/dV kernel keeps its key tile resident and streams query chunks): KNW, KMW,
// KTK (query rows per chunk), KSTAGES and KMAXREG, each the dQ kernel's NW, MW, TK, STAGES and
// MAXREG where absent, and KWG (0 where absent: the WG dK/dV kernel lost to the mma.sync one on
// every preset, docs/PERFORMANCE.md, 2026-11-26 session 6). Its key box is the dQ kernel's query
// box when both hold as many rows, else query_box's shape for 16 KMW KNW keys.
// KSPLIT=1 (WG tiles only) runs the dK/dV work as two kernels over the same key tiles, one for
// dV (S^T and P^T dO) and one for dK (S^T, dP^T and dS^T Q): five products instead of four, each
// kernel with fewer registers live.
// KQSUB (mma.sync tiles): query rows per compute step of a chunk (a multiple of 16 dividing KTK;
// fewer score registers live). KSEQ=1 (mma.sync tiles): S, P and dV before dP, dS and dK, dS
// from P's f16/bf16 pairs (half the score registers live). KVREG=0/1: the K and V fragments in
// shared memory or in registers (default: registers where (head dim buckets) * KMW <= 128).
// KRMETA=1 (mma.sync tiles, KTK <= 32): each chunk's lse, D and query windows in registers, one
// query row per lane, read by shuffles, instead of local memory.
// KWS=1 (WG tiles of 2+ stages with K and V in registers): the warp-specialized dK/dV kernel, a
// producer warpgroup that issues the chunk copies and metadata beside the KNW consumer warps,
// synchronized by mbarriers instead of a barrier per chunk (na_mma_bwd.cl's WS). Its register
// cap is the register file's share of its work-items (168 for 12 warps) unless KMAXREG is given.
// KWS=2: also each chunk's dV and dK products run on into the next chunk (retired by the wait
// for its S; 3+ stages), and under a cap the producer gives registers to the consumers
// (setmaxnreg, ws_registers).
// KWS=3: the consumers' loop rotated instead (na_mma_bwd.cl's WS_ROT): a chunk's P and dS are
// computed while the next chunk's S and dP run (3+ stages; setmaxnreg as for KWS=2).
// KTMA=1 (KWS=3 tiles, rank 1 without dilation, head dims 64, KTK up to 32): the producer takes
// each whole chunk's Q and dO rows by the TMA (na_mma_bwd.cl's TMA).
constexpr const char* kDkdvKeys[] = {"KNW",    "KMW",    "KTK",   "KSTAGES", "KMAXREG",
                                     "KWG",    "KSPLIT", "KQSUB", "KSEQ",    "KVREG",
                                     "KRMETA", "KWS",    "KTMA"};

// DQD (backward only, 1 where absent): 1, the dQ kernel computes each row's D = dot(dO, O) and
// writes it for the dK/dV kernel (no D pass); 0, the D pass (na_delta.cl) runs first.
int dq_delta_of(const Config& c) { return c.get("DQD", 1); }

// DQDEFER (backward only, 0 where absent): 1, the dQ kernel's WG tiles of 3+ stages let each
// chunk's dQ product run on into the next pass (na_mma_fwd.cl's DQ_DEFER).
int dq_defer_of(const Config& c) { return c.get("DQDEFER", 0); }

MmaTile dkdv_tile_of(const Config& c, const Problem& p) {
  const MmaTile q = tile_of(c);
  MmaTile k = q;
  k.nw = c.get("KNW", q.nw);
  k.mw = c.get("KMW", q.mw);
  k.tk = c.get("KTK", q.tk);
  k.stages = c.get("KSTAGES", q.stages);
  k.ws = c.get("KWS", 0);
  // The warp-specialized tile does not inherit the dQ kernel's cap (its own is below).
  k.maxreg = c.get("KMAXREG", k.ws ? 0 : q.maxreg);
  k.wg = c.get("KWG", 0);
  k.split = c.get("KSPLIT", 0);
  k.qsub = c.get("KQSUB", 0);
  k.seq = c.get("KSEQ", 0);
  k.kvreg = c.get("KVREG", -1);
  k.rmeta = c.get("KRMETA", 0);
  k.tma = c.get("KTMA", 0);
  // A warp-specialized tile of more than 8 warps takes the register file's share of a
  // work-item, unless a cap is given.
  if (k.ws != 0 && k.maxreg == 0 && k.nt() > 256) k.maxreg = nvidia_register_share(k.nt());
  if (k.rows() != q.rows()) query_box(p, k.rows(), k.tq);
  return k;
}

bool has_dkdv_keys(const Config& c) {
  for (const char* key : kDkdvKeys)
    if (c.get(key, -1) != -1) return true;
  return false;
}

// One work-group of `items` work-items (the probes and the map kernels).
Geometry single_group(std::size_t items) {
  Geometry g;
  g.global[0] = g.local[0] = items;
  return g;
}

// Shared memory of the kernels in bytes (must match na_mma_fwd.cl and na_mma_bwd.cl): the
// forward, the backward's dQ kernel (the forward's file with MMA_DQ) and its dK/dV kernel.
enum class MmaKernel { Forward, Dq, Dkdv };

constexpr std::size_t kNvLocalReserve = DeviceInfo::kNvidiaLocalReserve;  // see kernel_tile_error

std::size_t smem_bytes(const MmaTile& t, int hdp, int hdvp, MmaKernel kernel) {
  const std::size_t sk = (hdp + 8) / 2, sv = (hdvp + 8) / 2;
  // WG tiles keep K and V chunks as unpadded core matrices
  const std::size_t stage = t.wg ? t.tk * (hdp + hdvp) / 2 : t.tk * (sk + sv);
  const std::size_t tile_rows = static_cast<std::size_t>(t.bq());
  // TMA: 1 KB to align the chunk buffers to the swizzle's atoms, and two mbarriers a stage.
  const std::size_t tma = t.tma ? 1024 + 16 * t.stages : 0;
  switch (kernel) {
    case MmaKernel::Forward:
      return 4 * std::max<std::size_t>(tile_rows * sk, t.stages * stage) + 16 * t.stages * t.tk +
             tma;
    case MmaKernel::Dq:
      return 4 * std::max(
                     {tile_rows * sk, tile_rows * sv, static_cast<std::size_t>(t.stages) * stage}) +
             16 * t.stages * t.tk + tma;
    case MmaKernel::Dkdv:
      break;
  }
  // With the K and V fragments in registers (KV_REGS) the key tile is staged through the chunk
  // buffers' memory; WG tiles align the chunk buffers to 128 bytes (wgmma's descriptors).
  // KRMETA keeps no per-row lse, D and windows in local memory (36 bytes a row otherwise).
  const std::size_t tile = tile_rows * (sk + sv), chunks = t.stages * stage;
  // WS adds two 8-byte mbarriers a stage and each consumer warp's key box (24 bytes).
  return 4 * (t.kv_regs(hdp, hdvp) ? std::max(tile, chunks) : tile + chunks) +
         (t.rmeta ? 0 : 36 * t.stages * t.tk) + (t.wg ? 128 : 0) +
         (t.ws ? 16 * t.stages + 24 * t.nw : 0) + (t.tma ? 1024 : 0);
}

// Devices with wgmma (Hopper, compute capability 9.0): the WG tiles' host-side condition (the
// probe must pass as well, MmaVariant::forward).
bool wgmma_device(const DeviceInfo& dev) { return dev.nv_cc_major == 9 && dev.nv_cc_minor == 0; }

// What keeps a problem's K and V chunks from the TMA (TMA=1 or KTMA=1; empty when nothing) in
// `kernel`; k is the configuration keys' prefix for the messages. Rank 1 (na_mma_fwd.cl, and
// na_mma_bwd.cl's WS producer): a chunk is consecutive tokens (no dilation), a row 128 bytes
// (head dims 64). Ranks 2 and 3, the forward only (TMA_BOX): boxes of keys (chunk_box) of one
// or two 128-byte boxes a row (equal head dims of 64 or 128). Dilations up to 8 (the maps'
// element strides).
std::string tma_problem_error(const Problem& p, MmaKernel kernel, const std::string& k) {
  for (int a = 0; a < p.rank; ++a) {
    const int dil = p.axis[a].dilation;
    if (p.rank == 1 && dil != 1) {
      return k + "TMA at rank 1 needs no dilation (a chunk is consecutive tokens); got " +
             std::to_string(dil);
    }
    // A box takes every dil-th token through the map's element stride (at most 8), over
    // kb * dil tokens; chunk_box keeps that within the 256 a box dimension may span (its
    // first candidate, extents of at most 16 with TK <= 128, always does).
    if (dil > 8) {
      return "TMA needs dilations of 8 or less (the tensor map's element strides); axis " +
             std::to_string(a) + " has " + std::to_string(dil);
    }
  }
  if (p.rank == 1) {
    if (p.head_dim != 64 || p.head_dim_v != 64) {
      return k + "TMA needs head dims of 64 (128-byte rows); got " + std::to_string(p.head_dim) +
             "/" + std::to_string(p.head_dim_v);
    }
    return "";
  }
  if (kernel != MmaKernel::Forward) {
    return k + "TMA at rank " + std::to_string(p.rank) +
           " is the forward's only (the backward's kernels take it at rank 1)";
  }
  if (p.head_dim != p.head_dim_v || (p.head_dim != 64 && p.head_dim != 128)) {
    return "TMA at rank " + std::to_string(p.rank) +
           " needs equal head dims of 64 or 128 (rows of 128-byte boxes); got " +
           std::to_string(p.head_dim) + "/" + std::to_string(p.head_dim_v);
  }
  return "";
}

// Problems whose WG tiles can take their K and V chunks by the TMA at rank 1.
bool tma_applies(const Problem& p) {
  return p.rank == 1 && tma_problem_error(p, MmaKernel::Forward, "").empty();
}

// The same for the forward's chunk boxes at ranks 2 and 3.
bool tma_box_applies(const Problem& p) {
  return p.rank > 1 && tma_problem_error(p, MmaKernel::Forward, "").empty();
}

// The key boxes of TMA chunks at ranks 2 and 3 (tk keys, a multiple of 16) for query tiles of
// tq: of the boxes whose fastest used axis (axis 2 at rank 3, axis 1 at rank 2: a thread's
// columns of an n8 block lie along it) is a multiple of 8 and whose extents times the dilations
// stay within a TMA box dimension (256), the one the simulator gives the fewest chunks
// (box_chunks: whole boxes laid over each tile's key box, counted per axis; the same tq and tk
// for all, so the fewest score entries computed). Ties go to the first in this
// order: 8 keys along the fastest axis and at rank 3 up to 4 along axis 1, the rest along axis
// 0 (video-3d's 4x4x8 tiles with 64-key chunks: 2 x 4 x 8, covering key boxes of up to
// 11 x 19 x 23 with 12 x 20 x 24), then wider boxes along the faster axes. video-3d's 1x8x8
// tiles take 8 x 1 x 8 (5.25x attainable against 5.12x for 2 x 4 x 8); flux-2d's and
// vision-2d's 8x8 tiles keep 8 x 8.
void chunk_box(const Problem& p, const int tq[3], int tk, int kb[3]) {
  kb[0] = tk;
  kb[1] = kb[2] = 1;
  if (p.rank == 1) return;
  const int n = tk / 8;
  std::vector<std::array<int, 3>> boxes;
  if (p.rank == 3) {
    const int first1 = n % 4 == 0 ? 4 : n % 2 == 0 ? 2 : 1;
    boxes.push_back({n / first1, first1, 8});
    for (int f = 8; f <= tk; f *= 2)
      for (int m = 1; m * f <= tk; m *= 2)
        if (tk % (m * f) == 0) boxes.push_back({tk / (m * f), m, f});
  } else {
    for (int f = 8; f <= tk; f *= 2)
      if (tk % f == 0) boxes.push_back({tk / f, f, 1});
  }
  double best = -1;
  for (const auto& b : boxes) {
    bool fits = true;
    for (int a = 0; a < 3; ++a) fits &= b[a] * p.axis[a].dilation <= 256;
    if (!fits) continue;
    const double chunks = box_chunks(p, tq, b.data());
    if (best < 0 || chunks < best) {
      best = chunks;
      for (int a = 0; a < 3; ++a) kb[a] = b[a];
    }
  }
}

// The mean number of chunk boxes a query tile of the chunk-box forward visits.
double box_chunks_per_tile(const Problem& p, const int tq[3], int tk) {
  int kb[3];
  chunk_box(p, tq, tk, kb);
  double tiles = 1;
  for (int a = 0; a < p.rank; ++a) {
    int live = 0;
    for (int i = 0, n = tiles_on_axis(p.axis[a], tq[a]); i < n; ++i)
      live += tile_axis(p.axis[a], tq[a], i).valid > 0 ? 1 : 0;
    tiles *= live;
  }
  return tiles > 0 ? box_chunks(p, tq, kb) / tiles : 0;
}

// The persistent form (PERSIST) of a chunk-box forward tile, where registers hold several
// work-groups an SM: three at head dim 128 under the 168-register cap it already has, four at
// head dim 64 under a 128-register cap (added). False, and t unchanged, for other tiles.
bool make_persistent(MmaTile& t, int hdp) {
  if (hdp > 64 && t.maxreg == 168) {
    t.persist = 3;
    return true;
  }
  if (hdp <= 64 && t.maxreg == 0) {
    t.persist = 4;
    t.maxreg = 128;
    return true;
  }
  return false;
}

// The query tile of the TMA chunk-box forward (`rows` queries, tk-key chunks), starting from
// query_box's shape in tq: of the boxes of powers of two over the used axes, the one whose
// tiles visit the fewest chunks of their chunk_box (box_chunks: the simulator's count, so the
// fewest score entries computed); ties keep the earlier (query_box's shape first). video-3d,
// 64 queries: 1x8x8 with 8 x 1 x 8 boxes (5.25x attainable, against 4.55x for the 4x4x8 tiles
// of two warpgroups); flux-2d and vision-2d keep 8x8.
//
// The search evaluates box_chunks for some 30 tiles times their candidate boxes (video-3d: about
// 0.3 ms on the 2-core development VM), and every call's default selection runs it: its result,
// a function of the grid's axes, rows, tk and the starting shape, is kept per process.
void tma_box_tile(const Problem& p, int rows, int tk, int tq[3]) {
  std::vector<int> key = {p.rank, rows, tk, tq[0], tq[1], tq[2]};
  for (int a = 0; a < p.rank; ++a) {
    const Axis& x = p.axis[a];
    key.insert(key.end(), {x.length, x.kernel, x.stride, x.dilation, x.causal ? 1 : 0});
  }
  static std::mutex memo_mutex;
  static std::map<std::vector<int>, std::array<int, 3>> memo;
  {
    std::lock_guard<std::mutex> lock(memo_mutex);
    const auto it = memo.find(key);
    if (it != memo.end()) {
      for (int i = 0; i < 3; ++i) tq[i] = it->second[i];
      return;
    }
  }
  const auto chunks = [&](const int* q) {
    int kb[3];
    chunk_box(p, q, tk, kb);
    return box_chunks(p, q, kb);
  };
  double best = chunks(tq);
  for (int a = 1; a <= rows; a *= 2)
    for (int b = 1; a * b <= rows && (b == 1 || p.rank == 3); b *= 2) {
      // rank 3: a x b x rest; rank 2: a x rest
      const int q[3] = {a, p.rank == 3 ? b : rows / a, p.rank == 3 ? rows / (a * b) : 1};
      const double n = chunks(q);
      if (n < best) {
        best = n;
        for (int i = 0; i < 3; ++i) tq[i] = q[i];
      }
    }
  std::lock_guard<std::mutex> lock(memo_mutex);
  if (memo.size() >= 4096) memo.clear();  // a bound for processes that see many shapes
  memo[key] = {tq[0], tq[1], tq[2]};
}

// Why one kernel's tile cannot run (empty when it can). The dK/dV kernel's messages name its
// own parameters (K prefix) and say so.
std::string kernel_tile_error(const Problem& p, const DeviceInfo& dev, const MmaTile& t,
                              MmaKernel kernel) {
  const int hdp = head_dim_bucket(p.head_dim), hdvp = head_dim_bucket(p.head_dim_v);
  const bool kv = kernel == MmaKernel::Dkdv;
  const std::string k = kv ? "K" : "";
  const std::string what = kv ? "dK/dV kernel: " : "";
  for (int a = 0; a < 3; ++a) {
    if (t.tq[a] < 1) return "TQ" + std::to_string(a) + " < 1";
    if (a >= p.rank && t.tq[a] != 1) return "TQ" + std::to_string(a) + " must be 1 past the rank";
  }
  if (t.nw < 1 || t.nw > 16) return k + "NW outside 1..16";
  if (t.mw < 1 || t.mw > 2) return k + "MW must be 1 or 2";
  if (t.bq() != t.rows()) {
    return kv ? "the key box must hold 16 * KMW * KNW keys"
              : "the query box must hold 16 * MW * NW queries";
  }
  if (t.tk < 16 || t.tk % 16 != 0 || t.tk > 128) return k + "TK must be a multiple of 16 up to 128";
  if (t.stages < 1 || t.stages > 8) return k + "STAGES must be 1 to 8";
  if (t.maxreg != 0 && (t.maxreg < 64 || t.maxreg > 255)) return k + "MAXREG must be 0 or 64..255";
  if (t.wg != 0) {
    if (t.wg != 1) return k + "WG must be 0 or 1";
    if (!wgmma_device(dev)) {
      return k + "WG needs wgmma (compute capability 9.0); device has " +
             std::to_string(dev.nv_cc_major) + "." + std::to_string(dev.nv_cc_minor);
    }
    if (t.nw % 4 != 0) return k + "WG needs " + k + "NW a multiple of 4 (warpgroups)";
  }
  if (t.rot != 0) {
    if (t.rot != 1 && t.rot != 2) return "ROT must be 0, 1 or 2, not " + std::to_string(t.rot);
    if (!t.wg || t.stages != 2) return "ROT needs WG=1 and STAGES=2";
    if (t.rot == 2 && (t.nw != 8 || t.mw != 1))
      return "ROT=2 needs two warpgroups of one row block (NW=8, MW=1)";
    // The second warpgroup reads chunk c - 1's metadata while chunk c + 1's copies go out: only
    // rank 1 (arithmetic metadata) and the TMA chunk boxes (box coordinates in registers) keep
    // it out of the copies' way.
    if (t.rot == 2 && p.rank != 1 && !t.tma)
      return "ROT=2 at rank " + std::to_string(p.rank) + " needs TMA=1 (the chunk boxes)";
  }
  if (t.tma != 0) {
    if (t.tma != 1) return k + "TMA must be 0 or 1, not " + std::to_string(t.tma);
    if (kv && t.ws != 3) return "KTMA needs KWS=3 (its producer issues the boxes)";
    if (kv && t.tk > 32) return "KTMA needs KTK of 32 or less (the form measured and tested)";
    if (!t.wg || t.stages < 2)
      return k + "TMA needs " + k + "WG=1 and " + k + "STAGES of 2 or more";
    const std::string why = tma_problem_error(p, kernel, k);
    if (!why.empty()) return why;
  }
  if (t.persist != 0) {
    if (t.persist < 1 || t.persist > 8)
      return "PERSIST must be 0 or 1..8 (work-groups a compute unit), not " +
             std::to_string(t.persist);
    if (kernel != MmaKernel::Forward || !t.tma || p.rank == 1)
      return "PERSIST needs the forward's TMA chunk boxes (TMA=1 at rank 2 or 3)";
    if (t.rot || t.stages != 2 || t.mw != 1)
      return "PERSIST needs ROT=0, STAGES=2 and MW=1 (the form measured and tested)";
  }
  if (t.split != 0) {
    if (t.split != 1) return "KSPLIT must be 0 or 1";
    if (!t.wg) return "KSPLIT needs KWG=1 (the dV and dK kernels are WG tiles)";
  }
  if (t.qsub != 0) {
    if (t.qsub < 16 || t.qsub % 16 != 0 || t.tk % t.qsub != 0) {
      return "KQSUB=" + std::to_string(t.qsub) +
             " must be a multiple of 16 dividing KTK=" + std::to_string(t.tk);
    }
    if (t.wg) return "KQSUB applies to mma.sync dK/dV tiles only (KWG=0)";
  }
  if (t.seq != 0) {
    if (t.seq != 1) return "KSEQ must be 0 or 1";
    if (t.wg) return "KSEQ applies to mma.sync dK/dV tiles only (KWG=0)";
  }
  if (t.kvreg != -1 && t.kvreg != 0 && t.kvreg != 1) return "KVREG must be 0 or 1";
  if (t.ws != 0) {
    if (t.ws < 1 || t.ws > 3) return "KWS must be 0, 1, 2 or 3, not " + std::to_string(t.ws);
    if (t.ws >= 2 && t.stages < 3) {
      return "KWS=" + std::to_string(t.ws) + " needs KSTAGES of 3 or more, not " +
             std::to_string(t.stages);
    }
    if (!t.wg) return "KWS needs KWG=1 (the consumers' products are wgmma)";
    if (t.split) return "KWS computes dK and dV in one kernel (no KSPLIT)";
    if (t.stages < 2) return "KWS needs KSTAGES of 2 or more (the producer runs ahead)";
    if (t.nw > 8) return "KWS takes up to 8 consumer warps (KNW), not " + std::to_string(t.nw);
    if (!t.kv_regs(hdp, hdvp)) {
      return "KWS needs the K and V fragments in registers ((head dim buckets) * KMW <= 128, "
             "KVREG not 0)";
    }
  }
  if (t.rmeta != 0) {
    if (t.rmeta != 1) return "KRMETA must be 0 or 1";
    if (t.wg) return "KRMETA applies to mma.sync dK/dV tiles only (KWG=0)";
    if (t.tk > 32) {
      return "KRMETA needs KTK <= 32 (a query row per lane); got " + std::to_string(t.tk);
    }
  }
  if (static_cast<std::size_t>(t.nt()) > dev.max_work_group_size) {
    return what + "too many work-items";
  }
  // More than 8 warps only under a register cap that the register file holds for them
  // (nvidia_work_group_bound: without a cap the kernel may take 255 registers a work-item).
  if (static_cast<std::size_t>(t.nt()) > nvidia_work_group_bound(dev, t.maxreg)) {
    const std::string nw = k + "NW=" + std::to_string(t.nw);
    if (t.maxreg == 0) return what + nw + " (more than 256 work-items) needs " + k + "MAXREG";
    return what + nw + " with " + k + "MAXREG=" + std::to_string(t.maxreg) +
           " needs more than the 65536 registers of a work-group";
  }
  // NVIDIA's driver adds up to 16 bytes of its own to a kernel's local memory (H100, driver
  // 580.159.04: dK/dV kernels of 49152 bytes in __local arrays reported 49168). On compute
  // capability 9.0 the limit is the SM's opt-in one, not the 48 KB the device reports
  // (DeviceInfo::kernel_local_mem).
  const std::size_t own = smem_bytes(t, hdp, hdvp, kernel), smem = own + kNvLocalReserve;
  if (smem > dev.kernel_local_mem()) {
    return what + std::to_string(smem) + " bytes of local memory (" +
           std::to_string(kNvLocalReserve) + " of them the driver's) over the device's " +
           std::to_string(dev.kernel_local_mem());
  }
  // Past 48 KB only when the kernel's own arrays are: arrays of exactly 49152 bytes, 49168
  // with the driver's, did not run (session 10), while arrays over 48 KB do (session 15). Taken
  // to mean that the driver raises a kernel's limit for its arrays alone, so the few sizes
  // whose driver's bytes cross 48 KB are refused (not measured beyond those two facts).
  if (own <= dev.local_mem && smem > dev.local_mem) {
    return what + std::to_string(own) + " bytes of local memory, " + std::to_string(smem) +
           " with the driver's: within its " + std::to_string(kNvLocalReserve) +
           " bytes of the reported " + std::to_string(dev.local_mem) +
           " (such kernels did not run; over it, they do)";
  }
  return "";
}

std::string tile_error(const Problem& p, const DeviceInfo& dev, const Config& c, Pass pass) {
  if (pass == Pass::Forward) {
    if (c.get("DQD", -1) != -1) return "DQD is a backward parameter";
    if (c.get("DQDEFER", -1) != -1) return "DQDEFER is a backward parameter";
    if (has_dkdv_keys(c)) {
      std::string keys;
      for (const char* key : kDkdvKeys) keys += std::string(keys.empty() ? "" : ", ") + key;
      return keys + " are backward parameters";
    }
    return kernel_tile_error(p, dev, tile_of(c), MmaKernel::Forward);
  }
  if (c.get("ROT", -1) != -1) return "ROT is a forward parameter";
  if (c.get("PERSIST", -1) != -1) return "PERSIST is a forward parameter";
  const int dqd = dq_delta_of(c);
  if (dqd != 0 && dqd != 1) return "DQD must be 0 or 1, not " + std::to_string(dqd);
  const MmaTile dq = tile_of(c);
  const int defer = dq_defer_of(c);
  if (defer != 0 && defer != 1) return "DQDEFER must be 0 or 1, not " + std::to_string(defer);
  if (defer == 1 && (!dq.wg || dq.stages < 3)) {
    return "DQDEFER=1 needs the dQ kernel's WG tiles (WG=1) of 3 or more stages";
  }
  const std::string q = kernel_tile_error(p, dev, dq, MmaKernel::Dq);
  if (!q.empty()) return q;
  return kernel_tile_error(p, dev, dkdv_tile_of(c, p), MmaKernel::Dkdv);
}

enum class ProbeKind { Base, Wg, Tma };

struct ProbeKey {
  std::string device, driver;
  int dtype;
  ProbeKind kind;
  bool operator<(const ProbeKey& o) const {
    return std::tie(device, driver, dtype, kind) < std::tie(o.device, o.driver, o.dtype, o.kind);
  }
};

std::mutex g_probe_mutex;
std::map<ProbeKey, std::string> g_probe_results;

// The finding of a probe that has run on this device and failed ("" when it passed or has not
// run in this process).
std::string probe_failure(const DeviceInfo& dev, openna_dtype dtype, ProbeKind kind) {
  std::lock_guard<std::mutex> lock(g_probe_mutex);
  const auto it =
      g_probe_results.find(ProbeKey{dev.name, dev.driver_version, static_cast<int>(dtype), kind});
  return it == g_probe_results.end() ? "" : it->second;
}

// WG tiles for the defaults: a device with wgmma whose WG probe has not failed.
bool wg_default_ok(const DeviceInfo& dev, openna_dtype dtype) {
  return wgmma_device(dev) && probe_failure(dev, dtype, ProbeKind::Wg).empty();
}

// TMA chunks for the defaults: where they apply and the TMA probe has not failed.
bool tma_default_ok(const DeviceInfo& dev, const Problem& p) {
  return tma_applies(p) && probe_failure(dev, p.dtype, ProbeKind::Tma).empty();
}

// The forward's WG tiles with TMA chunk boxes at ranks 2 and 3 for the defaults: wgmma and the
// TMA where they apply and their probes have not failed.
bool tma_box_default_ok(const DeviceInfo& dev, const Problem& p) {
  return wg_default_ok(dev, p.dtype) && tma_box_applies(p) &&
         probe_failure(dev, p.dtype, ProbeKind::Tma).empty();
}

// Storage bits of small integers (exact in f16 and bf16), and back.
std::uint16_t to_bits(int x, openna_dtype dt) {
  return dt == OPENNA_BF16 ? float_to_bf16(static_cast<float>(x))
                           : float_to_f16(static_cast<float>(x));
}
float from_bits(std::uint16_t h, openna_dtype dt) {
  return dt == OPENNA_BF16 ? bf16_to_float(h) : f16_to_float(h);
}

Problem probe_problem(openna_dtype dt) {
  openna_problem cp{};
  cp.dtype = dt;
  cp.rank = 1;
  cp.batch = 1;
  cp.spatial[0] = 1;
  cp.heads = 1;
  cp.head_dim = 16;
  cp.kernel_size[0] = 1;
  return normalize(&cp);
}

// The WG tiles' probe (na_mma_wg_probe): both wgmma forms of the forward on small integers.
std::string run_wg_probe(Context& ctx, openna_dtype dt) {
  cl::Kernel k =
      ctx.kernel(kProbeFile, compile_options(ctx.device(), probe_problem(dt), {{"WG", 1}}),
                 "na_mma_wg_probe", std::string("na_mma_wg_probe_") + dtype_name(dt));
  std::vector<int> A(64 * 16), B1(256), B2(256);
  std::vector<std::uint16_t> a(A.size()), b1(256), b2(256);
  for (int i = 0; i < 64 * 16; ++i) a[i] = to_bits(A[i] = (i * 7 + i / 16) % 7 - 3, dt);
  for (int i = 0; i < 256; ++i) {
    b1[i] = to_bits(B1[i] = (i * 5 + 1) % 7 - 3, dt);
    b2[i] = to_bits(B2[i] = (i * 3 + i / 16) % 5 - 2, dt);
  }
  const auto buf = [&](std::vector<std::uint16_t>& v) {
    return cl::Buffer(ctx.ocl_context(), CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, v.size() * 2,
                      static_cast<void*>(v.data()));
  };
  cl::Buffer ba = buf(a), bb1 = buf(b1), bb2 = buf(b2), bd = ctx.alloc(2 * 64 * 16 * 4);
  ctx.launch(k, single_group(128), ba, bb1, bb2, bd);
  std::vector<float> d(2 * 64 * 16);
  ctx.queue().enqueueReadBuffer(bd, CL_TRUE, 0, d.size() * 4, d.data());
  for (int which = 0; which < 2; ++which)
    for (int m = 0; m < 64; ++m)
      for (int n = 0; n < 16; ++n) {
        int want = 0;  // B1 is stored [n][k] (K-major), B2 [k][n] (MN-major)
        for (int x = 0; x < 16; ++x)
          want += A[m * 16 + x] * (which ? B2[x * 16 + n] : B1[n * 16 + x]);
        const float got = d[which * 1024 + m * 16 + n];
        if (got != static_cast<float>(want)) {
          return std::string("wgmma probe (B ") + (which ? "MN" : "K") + "-major): D[" +
                 std::to_string(m) + "][" + std::to_string(n) + "] = " + std::to_string(got) +
                 ", expected " + std::to_string(want);
        }
      }
  return "";
}

// The TMA chunks' probe: na_tma_kv_maps builds the tensor maps of K and V ([1][80][1][64]) on
// the GPU, then na_mma_tma_probe loads their 64-token boxes at token 40 (the last 24 rows past
// the tensor: zeros) and multiplies through the forward's swizzled descriptors: S = Q K^T and
// O = P V with P = S, exact on small integers (|S| <= 64 is exact in f16 and bf16).
std::string run_tma_probe(Context& ctx, openna_dtype dt) {
  const std::string opts =
      compile_options(ctx.device(), probe_problem(dt), {{"WG", 1}, {"TMA", 1}});
  const std::string label = std::string("na_mma_tma_probe_") + dtype_name(dt);
  cl::Kernel km = ctx.kernel(kProbeFile, opts, "na_tma_kv_maps", label);
  cl::Kernel kp = ctx.kernel(kProbeFile, opts, "na_mma_tma_probe", label);
  constexpr int kN = 80, kTok0 = 40, kD = 64;
  std::vector<int> K(kN * kD), V(kN * kD), Q(64 * kD);
  std::vector<std::uint16_t> kb(K.size()), vb(V.size()), qb(Q.size());
  for (std::size_t i = 0; i < K.size(); ++i) {
    kb[i] = to_bits(K[i] = static_cast<int>((i * 7 + i / 64) % 3) - 1, dt);
    vb[i] = to_bits(V[i] = static_cast<int>((i * 5 + i / 64) % 5) - 2, dt);
  }
  for (std::size_t i = 0; i < Q.size(); ++i)
    qb[i] = to_bits(Q[i] = static_cast<int>((i * 3 + i / 64) % 3) - 1, dt);
  const auto buf = [&](std::vector<std::uint16_t>& v) {
    return cl::Buffer(ctx.ocl_context(), CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, v.size() * 2,
                      static_cast<void*>(v.data()));
  };
  cl::Buffer bk = buf(kb), bv = buf(vb), bq = buf(qb), maps = ctx.alloc(256),
             bd = ctx.alloc(2 * 64 * kD * 4);
  ctx.launch(km, single_group(32), maps, 0, bk, bv, 1, kN, 1, kD, kD, 64);
  ctx.launch(kp, single_group(128), maps, bq, bd, kTok0);
  std::vector<float> d(2 * 64 * kD);
  ctx.queue().enqueueReadBuffer(bd, CL_TRUE, 0, d.size() * 4, d.data());
  const auto row = [&](const std::vector<int>& t, int j, int c) {
    return kTok0 + j < kN ? t[(kTok0 + j) * kD + c] : 0;
  };
  std::vector<int> S(64 * 64);
  for (int i = 0; i < 64; ++i)
    for (int j = 0; j < 64; ++j) {
      int want = 0;
      for (int c = 0; c < kD; ++c) want += Q[i * kD + c] * row(K, j, c);
      S[i * 64 + j] = want;
      if (d[i * 64 + j] != static_cast<float>(want)) {
        return "TMA probe: S[" + std::to_string(i) + "][" + std::to_string(j) +
               "] = " + std::to_string(d[i * 64 + j]) + ", expected " + std::to_string(want);
      }
    }
  for (int i = 0; i < 64; ++i)
    for (int c = 0; c < kD; ++c) {
      int want = 0;
      for (int j = 0; j < 64; ++j) want += S[i * 64 + j] * row(V, j, c);
      const float got = d[4096 + i * kD + c];
      if (got != static_cast<float>(want)) {
        return "TMA probe: O[" + std::to_string(i) + "][" + std::to_string(c) +
               "] = " + std::to_string(got) + ", expected " + std::to_string(want);
      }
    }
  return "";
}

std::string run_probe(Context& ctx, openna_dtype dt) {
  cl::Kernel k = ctx.kernel(kProbeFile, compile_options(ctx.device(), probe_problem(dt), {}),
                            "na_mma_probe", std::string("na_mma_probe_") + dtype_name(dt));
  std::vector<std::uint16_t> a(256), bm(256);
  std::vector<int> A(256), Bm(256);
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) {
      A[i * 16 + j] = (i + 2 * j) % 7 - 3;
      Bm[i * 16 + j] = (3 * i + j) % 5 - 2;
      a[i * 16 + j] = to_bits(A[i * 16 + j], dt);
      bm[i * 16 + j] = to_bits(Bm[i * 16 + j], dt);
    }
  for (int j = 12; j < 16; ++j) Bm[15 * 16 + j] = 0;  // the zero-filled tail of the last copy
  cl::Buffer ba(ctx.ocl_context(), CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, std::size_t{512},
                static_cast<void*>(a.data()));
  cl::Buffer bb(ctx.ocl_context(), CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, std::size_t{512},
                static_cast<void*>(bm.data()));
  cl::Buffer bd = ctx.alloc(512), bmisc = ctx.alloc(128 * 4);
  ctx.launch(k, single_group(32), ba, bb, bd, bmisc);
  std::vector<std::uint16_t> d(256);
  std::vector<int> misc(128);
  ctx.queue().enqueueReadBuffer(bd, CL_TRUE, 0, 512, d.data());
  ctx.queue().enqueueReadBuffer(bmisc, CL_TRUE, 0, 512, misc.data());
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) {
      int want = 0;
      for (int x = 0; x < 16; ++x) want += A[i * 16 + x] * Bm[x * 16 + j];
      const float got = from_bits(d[i * 16 + j], dt);
      if (got != static_cast<float>(want)) {
        return "mma/ldmatrix/cp.async probe: D[" + std::to_string(i) + "][" + std::to_string(j) +
               "] = " + std::to_string(got) + ", expected " + std::to_string(want);
      }
    }
  for (int lane = 0; lane < 32; ++lane) {
    if (misc[lane] != (lane ^ 5)) return "shfl.sync.bfly probe failed";
    if (misc[32 + lane] != 2) return "vote.sync.all probe failed";
    if (misc[64 + lane] != 1) return "ldmatrix (non-transposed) probe failed";
    if (misc[96 + lane] != (1 << (lane & 7)) + 1000) return "ex2.approx probe failed";
  }
  return "";
}

}  // namespace

std::size_t mma_local_bytes(const Problem& p, const Config& c, Pass pass) {
  const int hdp = head_dim_bucket(p.head_dim), hdvp = head_dim_bucket(p.head_dim_v);
  if (pass == Pass::Forward) {
    return smem_bytes(tile_of(c), hdp, hdvp, MmaKernel::Forward) + kNvLocalReserve;
  }
  return std::max(smem_bytes(tile_of(c), hdp, hdvp, MmaKernel::Dq),
                  smem_bytes(dkdv_tile_of(c, p), hdp, hdvp, MmaKernel::Dkdv)) +
         kNvLocalReserve;
}

namespace {
std::string cached_probe(Context& ctx, openna_dtype dtype, ProbeKind kind) {
  const ProbeKey key{ctx.device().name, ctx.device().driver_version, static_cast<int>(dtype), kind};
  std::lock_guard<std::mutex> lock(g_probe_mutex);
  auto it = g_probe_results.find(key);
  if (it != g_probe_results.end()) return it->second;
  std::string result;
  try {
    result = kind == ProbeKind::Tma  ? run_tma_probe(ctx, dtype)
             : kind == ProbeKind::Wg ? run_wg_probe(ctx, dtype)
                                     : run_probe(ctx, dtype);
  } catch (const Error& e) {
    result = std::string("probe failed: ") + e.what();
  } catch (const cl::Error& e) {
    result = std::string("probe failed in ") + e.what() + " (" + cl_error_name(e.err()) + ")";
  }
  g_probe_results.emplace(key, result);
  return result;
}
}  // namespace

std::string mma_probe(Context& ctx, openna_dtype dtype, bool wg) {
  return cached_probe(ctx, dtype, wg ? ProbeKind::Wg : ProbeKind::Base);
}

std::string mma_tma_probe(Context& ctx, openna_dtype dtype) {
  // The TMA's chunks feed wgmma: the WG probe first.
  const std::string wg = mma_probe(ctx, dtype, true);
  if (!wg.empty()) return wg;
  return cached_probe(ctx, dtype, ProbeKind::Tma);
}

void mma_probe_record_for_test(const DeviceInfo& dev, openna_dtype dtype, int kind,
                               const std::string& finding) {
  const ProbeKind k = kind == 2 ? ProbeKind::Tma : kind == 1 ? ProbeKind::Wg : ProbeKind::Base;
  std::lock_guard<std::mutex> lock(g_probe_mutex);
  g_probe_results[ProbeKey{dev.name, dev.driver_version, static_cast<int>(dtype), k}] = finding;
}

void MmaVariant::prepare(Context& ctx, const Problem& p) const {
  const DeviceInfo& dev = ctx.device();
  if (p.dtype == OPENNA_F32 || !dev.is_nvidia() || !dev.is_gpu() || dev.nv_cc_major < 8) return;
  if (!mma_probe(ctx, p.dtype).empty() || !wgmma_device(dev)) return;
  if (!mma_probe(ctx, p.dtype, true).empty()) return;
  // the TMA probe wherever a default may take TMA chunks (tma_default_ok, tma_box_default_ok)
  if (tma_applies(p) || tma_box_applies(p)) mma_tma_probe(ctx, p.dtype);
}

std::string MmaVariant::unsupported_reason(const Problem& p, const DeviceInfo& dev,
                                           Pass pass) const {
  if (p.dtype == OPENNA_F32) return "mma takes f16 or bf16 (f32 runs on the fused variant)";
  if (!dev.is_nvidia() || !dev.is_gpu()) return "mma needs an NVIDIA GPU (NVIDIA's OpenCL driver)";
  if (dev.nv_cc_major < 0) return "the driver does not report the compute capability";
  if (dev.nv_cc_major < 8) {
    return "mma needs compute capability 8.0 (cp.async, bf16 mma); device has " +
           std::to_string(dev.nv_cc_major) + "." + std::to_string(dev.nv_cc_minor);
  }
  if (p.head_dim % 8 || p.head_dim_v % 8) {
    return "mma needs head dims that are multiples of 8 (16-byte rows); got " +
           std::to_string(p.head_dim) + "/" + std::to_string(p.head_dim_v);
  }
  if (head_dim_bucket(p.head_dim) > 128 || head_dim_bucket(p.head_dim_v) > 128) {
    return "mma keeps Q fragments in registers: head dims up to 128";
  }
  const std::string failed = probe_failure(dev, p.dtype, ProbeKind::Base);
  if (!failed.empty()) return "the mma probe failed on " + dev.name + ": " + failed;
  const std::string why = config_error(p, dev, pass, default_config(p, dev, pass));
  if (!why.empty()) return "no tile configuration fits: " + why;
  return "";
}

namespace {
void fall_back(const Problem& p, const DeviceInfo& dev, Pass pass, MmaTile& t);
Config wg_dq_default(const Problem& p, const DeviceInfo& dev, const MmaTile& kv);
}  // namespace

Config MmaVariant::default_config(const Problem& p, const DeviceInfo& dev, Pass pass) const {
  // From `openna-bench tune` on an H100 (driver 580.159.04, 2026-11-25, f16, after the per-warp
  // chunk skip and MW; docs/PERFORMANCE.md):
  //   forward, rank 1 (long-1d-causal, hd 64): 4 warps of two row blocks (128-query tiles),
  //     64-key chunks, 2 stages
  //   forward, rank 2, hd <= 64 (vision-2d and dilated): 4 warps, 8x8 boxes, 32-key chunks,
  //     3 stages (best on the dilated preset, within 2% of the best on vision-2d)
  //   forward, rank 2, hd 128 (flux-2d): 4 warps, 8x8 boxes, 16-key chunks, 1 stage (on
  //     compute capability 9.0, beyond 48 KB: 64-key chunks, 3 stages; session 15)
  //   forward, rank 3, hd 128 (video-3d): 8 warps, 4x4x8 boxes, 64-key chunks, 1 stage (on
  //     compute capability 9.0: a WG tile of 2 stages; session 15)
  //   backward, hd <= 64: two 16-row blocks per warp (MW 2); rank 1: 4 warps, 32-row chunks,
  //     1 stage, at most 168 registers; rank 2-3: 2 warps, 16-row chunks, 2 stages
  //   backward, hd 128: 4 warps, 16-row chunks, 1 stage (the dK/dV kernel keeps the K and V
  //     tile resident: 48 KB of shared memory leaves no room for more)
  //   backward on compute capability 9.0: the dQ kernel as WG tiles (wg_dq_default; at head
  //     dim 128 with its dQ products deferred, DQDEFER), the dK/dV kernel warp-specialized in
  //     ranks 1 and 2 at head dims up to 64, else as above (head dim 128 in ranks 2 and 3:
  //     32-row chunks, 2 stages, beyond 48 KB) with its chunk metadata in registers and, at
  //     head dim 128, S, P, dV before dP, dS, dK (wg_dq_default)
  const int hdp = std::max(head_dim_bucket(p.head_dim), head_dim_bucket(p.head_dim_v));
  MmaTile t;
  if (pass == Pass::Backward) {
    if (hdp <= 64) {
      t.mw = 2;
      t.nw = p.rank == 1 ? 4 : 2;
      t.tk = p.rank == 1 ? 32 : 16;
      t.stages = p.rank == 1 ? 1 : 2;
      if (p.rank == 1) t.maxreg = 168;
    } else {
      t.nw = 4;
      t.tk = 16;
      t.stages = 1;
    }
  } else if (wg_default_ok(dev, p.dtype) && hdp <= 64 && p.rank == 1) {
    // WG tiles (wgmma), two warpgroups of 64 rows, 64-key chunks, the register cap that fits two
    // work-groups on an SM (2026-11-26 session 5, f16, checked): long-1d-causal 1.189 -> 1.101
    // ms on the H200 and 1.180 -> 1.102 on the H100. In rank 2 the WG tile won on the H200
    // (vision-2d 0.213 -> 0.2055) but lost on the H100 (0.2107 -> 0.2212): there it is the
    // H200's tuning entry only.
    // Since session 12 the rotated loop with the second warpgroup half a pass behind (ROT=2):
    // long-1d-causal 0.985 -> 0.91 ms on the H100 (f16 and bf16; not measured on the H200).
    t.wg = 1;
    t.nw = 8;
    t.tk = 64;
    t.stages = 2;
    t.maxreg = 128;
    t.rot = 2;
    // Since session 18 the K and V chunks by the TMA where it applies (tma_applies): H100,
    // long-1d-causal, two alternating rounds (tools/sweeps/tma18.txt): 0.8647-0.8784 -> 0.7085-
    // 0.7096 ms (f16), 0.8602 -> 0.7081 (bf16).
    t.tma = tma_default_ok(dev, p) ? 1 : 0;
  } else if (p.rank == 1) {
    t.nw = 4;
    t.mw = hdp <= 64 ? 2 : 1;
    t.tk = 64;
    t.stages = 2;
  } else if (p.rank == 2 && tma_box_default_ok(dev, p)) {
    // One warpgroup's WG tile with 64-key chunk boxes of 8 x 8 keys by the TMA, 2 stages. H100,
    // f16 (2026-11-27 session 19, tools/sweeps/tmabox19.txt, tmabox19b.txt): flux-2d 0.1957 ->
    // 0.1008 ms (3 stages 0.1133), vision-2d 0.2064 -> 0.1441 (3 stages 0.1435), the dilated
    // preset 0.1731 -> 0.1212 (against the mma.sync tiles below and the tuning entries). At head
    // dim 128 under a 168-register cap (three work-groups an SM): flux-2d 0.09555 / 0.09523 ->
    // 0.09446 / 0.09469 (two rounds, tools/sweeps/cap19.txt; vision-2d's 128 changed nothing).
    t.wg = 1;
    t.nw = 4;
    t.tk = 64;
    t.stages = 2;
    t.tma = 1;
    if (hdp > 64) t.maxreg = 168;
  } else if (p.rank == 2) {
    t.nw = 4;
    t.tk = hdp <= 64 ? 32 : 16;
    t.stages = hdp <= 64 ? 3 : 1;
    // Head dim 128 on compute capability 9.0, where a kernel may take more than 48 KB of local
    // memory (DeviceInfo::kernel_local_mem): 64-key chunks, 3 stages (105 KB). H100, f16
    // (2026-11-27 session 15, tools/sweeps/smem15b.txt): flux-2d 0.2105 -> 0.1952 ms.
    if (hdp > 64 && wgmma_device(dev)) {
      t.tk = 64;
      t.stages = 3;
    }
  } else {
    t.nw = 8;
    t.tk = 64;
    t.stages = 1;
    // Compute capability 9.0: a WG tile of two warpgroups, 2 stages (66 KB at head dim 128).
    // H100, f16 (session 15, smem15b.txt): video-3d 3.638 -> 3.359 ms.
    if (wg_default_ok(dev, p.dtype)) {
      t.wg = 1;
      t.stages = 2;
      // With 64-key chunk boxes by the TMA where they apply. H100, f16 (session 19,
      // tools/sweeps/tmabox19.txt): video-3d 3.385-3.418 -> 1.976-1.978 ms (4x4x8 tiles, 2 x 4 x
      // 8 boxes). Since session 20 one warpgroup of 64 queries (tma_box_tile: 1x8x8 on video-3d),
      // at head dim 128 under the 168-register cap that fits three work-groups on an SM, which
      // then overlap one another's exponentials and products (tools/sweeps/rot20.txt): video-3d
      // 1.925-1.932 -> 1.504 ms (2 x 4 x 8 boxes; 1.754 without the cap, 1.517 with 2x4x8
      // tiles).
      if (tma_box_default_ok(dev, p)) {
        t.tma = 1;
        t.nw = 4;
        if (hdp > 64) t.maxreg = 168;
      }
    }
  }
  query_box(p, t.rows(), t.tq);
  if (t.tma && p.rank > 1) tma_box_tile(p, t.rows(), t.tk, t.tq);
  // Fall back towards smaller tiles where shared memory or work-group size does not allow these.
  fall_back(p, dev, pass, t);
  // Persistent work-groups for the chunk-box forward where tiles visit few chunks (so that a
  // tile's ends weigh), as many an SM as registers and local memory hold: three at head dim 128
  // (the 168-register cap, 66.6 KB), four at head dim 64 under a 128-register cap (34 KB). H100,
  // two rounds of 30, tools/sweeps/persist23c.out.txt (session 23): flux-2d (9 chunks a tile)
  // 0.0918 -> 0.0850 ms, vision-2d (6.75) 0.1128 -> 0.1098 (bf16 0.1116 -> 0.1092), the
  // dilated preset (6) 0.109 -> 0.1053 (bf16 0.1088 -> 0.1052); video-3d (48.75 chunks) 1.3215
  // -> 1.325, so not there. The bound of 16 chunks lies between the measured shapes.
  if (pass == Pass::Forward && t.tma && p.rank > 1 && t.stages == 2 && t.mw == 1 && !t.rot &&
      box_chunks_per_tile(p, t.tq, t.tk) <= 16)
    make_persistent(t, hdp);
  if (pass == Pass::Backward && wg_default_ok(dev, p.dtype)) {
    const Config wg = wg_dq_default(p, dev, t);
    if (!wg.params.empty()) return wg;
  }
  return config_of(t);
}

namespace {

// Shrinks a default tile until it fits the device (tile_error), in a fixed order.
void fall_back(const Problem& p, const DeviceInfo& dev, Pass pass, MmaTile& t) {
  while (!tile_error(p, dev, config_of(t), pass).empty() &&
         (t.stages > 1 || t.tk > 16 || t.nw > 1 || t.mw > 1 || t.wg)) {
    if (t.wg) {
      t.wg = 0;  // the mma.sync tiles below fall back further
      t.rot = 0;
      t.tma = 0;
      t.maxreg = 0;
      query_box(p, t.rows(), t.tq);  // (not tma_box_tile's shape)
    } else if (t.mw > 1) {
      t.mw = 1;
      t.maxreg = 0;
      query_box(p, t.rows(), t.tq);
    } else if (t.stages > 1) {
      t.stages = 1;
    } else if (t.tk > 16) {
      t.tk /= 2;
    } else {
      t.nw /= 2;
      query_box(p, t.rows(), t.tq);
    }
  }
}

// The backward's default on devices with wgmma: the dQ kernel as WG tiles, the dK/dV kernel as
// the mma.sync tile `kv` without a register cap (given by its own keys); empty where the WG tile
// does not fit. From
// the H200 (driver 580.159.04, 2026-11-26 session 6, f16; docs/PERFORMANCE.md): the dQ kernel
// 1.504 -> 1.221 ms on long-1d-causal (two warpgroups, 32-key chunks, 3 stages, 128 registers),
// 0.2786 -> 0.2313 on vision-2d and 0.2427 -> 0.197 on the dilated preset (one warpgroup,
// 32-key chunks, 3 stages), 0.2631 -> 0.2251 on flux-2d and 5.175 -> 4.331 on video-3d (one
// warpgroup, 32-key chunks, 2 stages at head dim 128).
Config wg_dq_default(const Problem& p, const DeviceInfo& dev, const MmaTile& kv) {
  const int hdp = std::max(head_dim_bucket(p.head_dim), head_dim_bucket(p.head_dim_v));
  MmaTile q;
  q.wg = 1;
  q.tk = 32;
  bool defer = false;
  if (hdp <= 64 && p.rank == 1) {
    q.nw = 8;
    q.stages = 3;
    q.maxreg = 128;
    // The chunks by the TMA where it applies: H100, long-1d-causal (f16, two alternating
    // rounds, session 18, tools/sweeps/tma18.txt): the dQ kernel 1.017-1.026 -> 0.912-0.913 ms.
    q.tma = tma_default_ok(dev, p) ? 1 : 0;
  } else if (hdp > 64 && p.rank > 1) {
    // Two warpgroups, 3 stages: more than 48 KB (compute capability 9.0 allows it, and only it
    // calls this). H100, f16 (2026-11-27 session 15, tools/sweeps/smem15b.txt): the dQ kernel
    // 4.14 -> 3.35-3.39 ms on video-3d, 0.2333 -> 0.2154 on flux-2d.
    // With each chunk's dQ product deferred into the next pass (DQDEFER=1). H100, f16
    // (session 16, tools/sweeps/dq16.txt): the dQ kernel 3.365 -> 3.167 ms on video-3d, 0.2137
    // -> 0.2088 on flux-2d. At head dim 64 it did not pay: long-1d-causal 1.018 -> 1.143-1.194
    // (ptxas serialized its wgmma under the cap of 128 registers, C7512 in the local stand-in),
    // vision-2d 0.2299 -> 0.2271-0.2322, vision-2d-dilated 0.2001 -> 0.1996.
    q.nw = 8;
    q.stages = 3;
    defer = true;
  } else {
    q.nw = 4;
    q.stages = hdp <= 64 ? 3 : 2;
  }
  query_box(p, q.rows(), q.tq);
  const auto with_kv = [&](const MmaTile& k) {
    Config c = config_of(q);
    if (defer) c.set("DQDEFER", 1);
    c.set("KNW", k.nw);
    c.set("KMW", k.mw);
    c.set("KTK", k.tk);
    c.set("KSTAGES", k.stages);
    // Without a register cap: the rank-1 tile's 168 (best when its dK/dV kernel loaded lse and
    // D synchronously) became 2.51 against 2.42 ms uncapped on long-1d-causal (H100, session 6).
    if (q.maxreg != 0) c.set("KMAXREG", 0);
    // The chunk metadata in registers. H100, f16, checked (2026-11-26 session 10,
    // tools/sweeps/rmeta10.txt), dK/dV kernel: flux-2d 0.4647 -> 0.4024 ms, video-3d 8.367 ->
    // 7.213, vision-2d-dilated 0.3167 -> 0.3113; long-1d-causal 1.976 -> 2.029 alone.
    // With it, S, P and dV before dP, dS and dK at head dim 128 (same session, alternating
    // rounds, tools/sweeps/rmeta10c.txt): flux-2d 0.4002/0.3971 -> 0.391/0.3903, video-3d
    // 7.104/7.056 -> 6.966/6.981. In rank 1 the two together, against the tile without either
    // (long10b.txt, long10c.txt): long-1d-causal f16 2.003/1.99/1.999 -> 1.943/1.972/1.956, but
    // bf16 2.021/2.018 -> 2.041/2.04, so f16 only.
    const bool rank1 = p.rank == 1;
    if (k.tk <= 32 && (!rank1 || p.dtype == OPENNA_F16)) {
      c.set("KRMETA", 1);
      if (hdp > 64 || rank1) c.set("KSEQ", 1);
    }
    return c;
  };
  // Rank 1 at head dims up to 64: the warp-specialized WG dK/dV tile (KWS=1: two consumer
  // warpgroups of 64 keys, 32-row chunks, 4 stages, a producer warp per stage; 12 warps under
  // the 168-register cap). H100 (2026-11-26 session 14, tools/sweeps/ws14e.txt, f16):
  // long-1d-causal's dK/dV kernel 1.963 -> 1.564-1.575 ms against the mma.sync tile below.
  // Rank 2 at head dims up to 64: the same tile with 8 stages (two per producer warp, 74 KB)
  // and the dV/dK products run on into the next chunk (KWS=2). H100, f16 (2026-11-27 session
  // 15, tools/sweeps/ws15d.txt), dK/dV kernel: vision-2d 0.3413 -> 0.3204 ms (KWS=1 with 4
  // stages 0.3315, with 8 0.3238), vision-2d-dilated 0.3038 -> 0.2851 (KWS=1, 4 stages:
  // 0.2919), against their tuned tiles. In rank 1 8 stages lost (1.647-1.69 against 1.56-1.58).
  // Since session 17 the producer finds each chunk row's metadata lane by lane (na_mma_bwd.cl's
  // LOAD_QCHUNK for WS), and rank 1 takes the rotated consumers (KWS=3) with 8 stages. H100
  // (2026-11-27, tools/sweeps/noinc17.txt and tiles17.txt), long-1d-causal's dK/dV kernel:
  // 1.529-1.548 ms (KWS=1, 4 stages) -> 1.469-1.493 (f16, five rounds), bf16 1.535 -> 1.472.
  // In rank 2 KWS=3 tied KWS=2 (vision-2d 0.290 against 0.288, vision-2d-dilated 0.2547 against
  // 0.2575).
  if (p.rank <= 2 && hdp <= 64) {
    Config c = config_of(q);
    if (q.maxreg != 0) c.set("KMAXREG", 0);  // the WS tile's own cap (dkdv_tile_of)
    c.set("KNW", 8);
    c.set("KMW", 1);
    c.set("KTK", 32);
    c.set("KSTAGES", 8);
    c.set("KWG", 1);
    c.set("KWS", p.rank == 1 ? 3 : 2);
    // Since session 18 the producer takes whole chunks by the TMA where it applies (KTMA=1).
    // H100 (tools/sweeps/ktma18.txt, two rounds), long-1d-causal's dK/dV kernel: 1.472-1.474
    // -> 1.366-1.367 ms (f16), 1.470 -> 1.356 (bf16).
    if (tma_default_ok(dev, p)) c.set("KTMA", 1);
    if (tile_error(p, dev, c, Pass::Backward).empty()) return c;
  }
  // Rank 2 at head dims up to 64 where the WS tile does not fit: a 128-key dK/dV tile (4 warps
  // of two blocks, 32-row chunks, 1 stage), as on rank 1 before session 14. H100, after the
  // unmasked-chunk branch (2026-11-26 session 7, tools/sweeps/retune7.txt, f16): dK/dV kernel
  // 0.3797 -> 0.3137 ms on vision-2d-dilated and 0.3987 -> 0.3813 on vision-2d against the
  // 64-key tile of 2 warps, 16-row chunks, 2 stages.
  if (p.rank == 2 && hdp <= 64) {
    MmaTile k = kv;
    k.nw = 4;
    k.mw = 2;
    k.tk = 32;
    k.stages = 1;
    const Config c = with_kv(k);
    if (tile_error(p, dev, c, Pass::Backward).empty()) return c;
  }
  // Head dim 128 in ranks 2 and 3: 32-row chunks, 2 stages (more than 48 KB), 128 keys in
  // rank 3. H100, f16 (session 15, smem15.txt and smem15b.txt), dK/dV kernel: video-3d 6.88 ->
  // 5.93-6.0 ms, flux-2d 0.388 -> 0.340 (its 128-key tile: 0.485).
  if (hdp > 64 && p.rank > 1) {
    MmaTile k = kv;
    k.nw = p.rank == 3 ? 8 : 4;
    k.mw = 1;
    k.tk = 32;
    k.stages = 2;
    const Config c = with_kv(k);
    if (tile_error(p, dev, c, Pass::Backward).empty()) return c;
  }
  const Config c = with_kv(kv);
  if (!tile_error(p, dev, c, Pass::Backward).empty()) return Config{};
  return c;
}

}  // namespace

std::vector<Config> MmaVariant::candidates(const Problem& p, const DeviceInfo& dev,
                                           Pass pass) const {
  // Warps x row blocks per warp x chunk x pipeline depth, up to 256 keys in flight (deeper
  // pipelines need more than 48 KB of local memory: compute capability 9.0 only,
  // DeviceInfo::kernel_local_mem).
  std::vector<Config> out;
  for (int nw : {2, 4, 8})
    for (int mw : {1, 2})
      for (int tk : {16, 32, 64, 128})
        for (int stages : {1, 2, 3, 4}) {
          if (nw * mw > 8 || stages * tk > 256) continue;
          MmaTile t;
          t.nw = nw;
          t.mw = mw;
          query_box(p, t.rows(), t.tq);
          t.tk = tk;
          t.stages = stages;
          const Config c = config_of(t);
          if (config_error(p, dev, pass, c).empty()) out.push_back(c);
          // With 8 warps (or 4 of two row blocks) the register count decides whether two
          // work-groups share an SM.
          if (nw * mw == 8) {
            t.maxreg = mw == 1 ? 128 : 168;
            const Config r = config_of(t);
            if (config_error(p, dev, pass, r).empty()) out.push_back(r);
          }
        }
  // WG tiles (wgmma, compute capability 9.0): one or two warpgroups of one or two row blocks,
  // with and without the register cap that lets two work-groups of 8 warps share an SM (in the
  // backward, the dQ kernel's; the dK/dV kernel's below), with and without TMA chunks where
  // they apply. The chunk-box forward's tiles take the simulator's shape (tma_box_tile), and
  // one warpgroup of one row block there also the 168-register cap (three work-groups an SM
  // at head dim 128).
  for (int nw : {4, 8})
    for (int mw : {1, 2})
      for (int tk : {32, 64})
        for (int stages : {1, 2, 3, 4}) {
          if (nw * mw > 8 || stages * tk > 192) continue;
          MmaTile t;
          t.nw = nw;
          t.mw = mw;
          t.wg = 1;
          t.tk = tk;
          t.stages = stages;
          for (int maxreg : {0, 128, 168})
            for (int rot : {0, 1, 2})
              for (int tma = 0;
                   tma <= (tma_applies(p) || (tma_box_applies(p) && pass == Pass::Forward) ? 1 : 0);
                   ++tma) {
                const bool boxes = tma && p.rank > 1;
                if (!(maxreg == 0 || (maxreg == 128 && nw * mw == 8) ||
                      (maxreg == 168 && nw * mw == 4 && boxes && p.head_dim > 64)))
                  continue;
                t.maxreg = maxreg;
                t.rot = rot;
                t.tma = tma;
                query_box(p, t.rows(), t.tq);
                if (boxes) tma_box_tile(p, t.rows(), t.tk, t.tq);
                const Config c = config_of(t);
                if ((rot == 0 || pass == Pass::Forward) && config_error(p, dev, pass, c).empty())
                  out.push_back(c);
                // the chunk-box forward also persistent where registers allow it (in the
                // default's key order, so that the default is found among these)
                MmaTile pt = t;
                if (boxes && pass == Pass::Forward && rot == 0 &&
                    make_persistent(pt, head_dim_bucket(p.head_dim))) {
                  const Config pc = config_of(pt);
                  if (config_error(p, dev, pass, pc).empty()) out.push_back(pc);
                }
              }
        }
  const Config def = default_config(p, dev, pass);
  if (pass == Pass::Backward) {
    // The dK/dV kernel's own tiles beside the default dQ tile: 64 or 128 keys (on the H100,
    // 32-key tiles were slower on every preset; docs/PERFORMANCE.md, 2026-11-25 session 3), 16,
    // 32 or 64 query rows per chunk, 1 to 4 stages (up to 128 rows); mma.sync or WG; the
    // mma.sync tiles also with their chunk metadata in registers, WG ones also warp-specialized.
    // Each starts from the default without its dK/dV kernel's form (KRMETA and KSEQ apply to
    // mma.sync tiles only; KWG, KWS and KTMA are set below).
    Config base = def;
    for (const char* key : {"KRMETA", "KSEQ", "KWG", "KWS", "KTMA"}) base.erase(key);
    for (int kwg : {0, 1})
      for (int knw : {2, 4, 8})
        for (int kmw : {1, 2})
          for (int ktk : {16, 32, 64})
            for (int kst : {1, 2, 3, 4}) {
              if (knw * kmw < 4 || knw * kmw > 8 || ktk * kst > 128) continue;
              Config c = base;
              c.set("KNW", knw);
              c.set("KMW", kmw);
              c.set("KTK", ktk);
              c.set("KSTAGES", kst);
              if (kwg) c.set("KWG", 1);
              if (config_error(p, dev, pass, c).empty()) out.push_back(c);
              if (kwg) {
                for (int ws : {1, 2, 3}) {
                  Config w = c;
                  w.set("KWS", ws);
                  // each also with the producer's TMA boxes where they apply (KWS=3)
                  for (int ktma = 0; ktma <= (ws == 3 && tma_applies(p) ? 1 : 0); ++ktma) {
                    if (ktma) w.set("KTMA", 1);
                    w.set("KSTAGES", kst);
                    if (config_error(p, dev, pass, w).empty()) out.push_back(w);
                    if (kst == 4) {  // and 8: two stages per producer warp (rank 2's default)
                      w.set("KSTAGES", 8);
                      if (config_error(p, dev, pass, w).empty()) out.push_back(w);
                    }
                  }
                }
                c.set("KSPLIT", 1);
                if (config_error(p, dev, pass, c).empty()) out.push_back(c);
              } else {
                c.set("KRMETA", 1);
                if (config_error(p, dev, pass, c).empty()) out.push_back(c);
              }
            }
  }
  if (std::find(out.begin(), out.end(), def) == out.end()) out.insert(out.begin(), def);
  return out;
}

std::string MmaVariant::config_error(const Problem& p, const DeviceInfo& dev, Pass pass,
                                     const Config& c) const {
  for (const auto& kv : c.params) {
    static const char* known[] = {"TQ0", "TQ1", "TQ2",     "NW",  "MW",     "TK",
                                  "STAGES", "MAXREG", "WG", "DQD", "ROT", "DQDEFER",
                                  "TMA", "PERSIST"};
    const auto is = [&](const char* k) { return kv.first == k; };
    if (std::none_of(std::begin(known), std::end(known), is) &&
        std::none_of(std::begin(kDkdvKeys), std::end(kDkdvKeys), is)) {
      return "unknown parameter " + kv.first;
    }
  }
  return tile_error(p, dev, c, pass);
}

namespace {

// "w4_k16_s1[_m2][_r168][_wg][_tma]...": a kernel's warps, chunk rows, stages, row blocks,
// register cap, wgmma and its other options.
std::string tile_knobs(const MmaTile& t) {
  return "w" + std::to_string(t.nw) + "_k" + std::to_string(t.tk) + "_s" +
         std::to_string(t.stages) + (t.mw != 1 ? "_m" + std::to_string(t.mw) : "") +
         (t.maxreg ? "_r" + std::to_string(t.maxreg) : "") + (t.wg ? "_wg" : "") +
         (t.rot ? "_rot" : "") + (t.tma ? "_tma" : "") +
         (t.persist ? "_p" + std::to_string(t.persist) : "") + (t.split ? "_split" : "") +
         (t.qsub ? "_qs" + std::to_string(t.qsub) : "") + (t.seq ? "_seq" : "") +
         (t.kvreg >= 0 ? "_kvr" + std::to_string(t.kvreg) : "") + (t.rmeta ? "_rm" : "") +
         (t.ws ? "_ws" + std::to_string(t.ws) : "");
}

}  // namespace

std::string MmaVariant::config_suffix(const Problem& p, const Config& c) const {
  const MmaTile t = tile_of(c);
  std::string s = "q";
  for (int a = 0; a < p.rank; ++a) s += (a ? "x" : "") + std::to_string(t.tq[a]);
  s += "_" + tile_knobs(t);
  if (dq_delta_of(c) == 0) s += "_dpass";  // D by the D pass
  if (dq_defer_of(c) == 1) s += "_defer";
  // The dK/dV kernel's own tile, after "_kv".
  return has_dkdv_keys(c) ? s + "_kv" + tile_knobs(dkdv_tile_of(c, p)) : s;
}

SimResult MmaVariant::simulate(const Problem& p, const Config& c) const {
  const MmaTile t = tile_of(c);
  if (t.tma && p.rank > 1) {  // the forward's chunks are boxes of keys
    int kb[3];
    chunk_box(p, t.tq, t.tk, kb);
    return simulate_box_tiles(p, t.tq, t.tk, kb);
  }
  return simulate_box_tiles(p, t.tq, t.tk);
}

namespace {

// KWS=2 or 3 under a register cap: the registers setmaxnreg leaves the producer warpgroup and
// gives each consumer work-item from the work-group's pool (maxreg per work-item), in multiples
// of 8; {0, 0} (no setmaxnreg) otherwise. KWS=2: 88 for the producer (at 56 the driver's build
// spilled 184 bytes and long-1d-causal's dK/dV kernel took 2.18 ms instead of 1.66; H100,
// session 14). KWS=3: 72, which leaves the rotated consumers 216 (long-1d-causal's defines in
// the local stand-in, tools/local_ptxas.sh: no spill at 216/72 or 224/56; at 232/40 the producer
// spilled 44 bytes; at 208/88, or without setmaxnreg, ptxas serialized the wgmma, C7512).
std::pair<int, int> ws_registers(const MmaTile& t) {
  if (t.ws < 2 || t.maxreg == 0) return {0, 0};
  const int producer = t.ws == 3 ? 72 : 88;
  const int consumers = std::min(255, (t.maxreg * t.nt() - 128 * producer) / (32 * t.nw)) / 8 * 8;
  if (consumers <= t.maxreg) return {0, 0};
  return {consumers, producer};
}

// Compile options of an mma program (one place for the forward, dQ and dK/dV kernels).
std::string mma_options(const DeviceInfo& dev, const Problem& p, const MmaTile& t,
                        std::vector<std::pair<std::string, int>> extra) {
  const int hdp = head_dim_bucket(p.head_dim), hdvp = head_dim_bucket(p.head_dim_v);
  std::vector<std::pair<std::string, int>> defs = {
      {"HDP", hdp},     {"HDVP", hdvp}, {"TQ0", t.tq[0]}, {"TQ1", t.tq[1]},
      {"TQ2", t.tq[2]}, {"NW", t.nw},   {"MW", t.mw},     {"STAGES", t.stages}};
  defs.insert(defs.end(), extra.begin(), extra.end());
  // Head dims equal to their buckets become compile-time constants in the kernels (HD_EXACT in
  // na_mma_common.h): H100, f16, alternating rounds (2026-11-26 session 13, docs/PERFORMANCE.md):
  // forward video-3d 3.654 -> 3.608 ms, flux-2d 0.2134 -> 0.2082, long-1d-causal (with the
  // rotated loop's copies after its wgmma) 0.886-0.896 -> 0.869-0.871; backward flux-2d 0.619 ->
  // 0.611, vision-2d 0.5726 -> 0.5635.
  defs.push_back({"HD_EXACT", p.head_dim == hdp && p.head_dim_v == hdvp ? 1 : 0});
  // The per-warp chunk skip pays where a warp's rows see a clearly smaller part of the tile's
  // box than the whole tile does; estimated on axis 0 (warps split the tile along it).
  const int rows0 = std::max(1, t.rows() / t.nw / (t.tq[1] * t.tq[2]));
  const double skippable =
      static_cast<double>(t.tq[0] - std::min(rows0, t.tq[0])) / (p.axis[0].kernel + t.tq[0] - 1);
  // wgmma is a warpgroup's instruction: its warps never skip a chunk alone.
  defs.push_back({"WSKIP", skippable >= 0.1 && !t.wg ? 1 : 0});
  if (t.wg) defs.push_back({"WG", 1});
  if (t.tma) defs.push_back({"TMA", 1});
  if (t.tma && p.rank > 1) {
    int kb[3];
    chunk_box(p, t.tq, t.tk, kb);
    defs.insert(defs.end(), {{"KB0", kb[0]}, {"KB1", kb[1]}, {"KB2", kb[2]}});
  }
  std::string opts = compile_options(dev, p, defs);
  if (t.maxreg) opts += " -cl-nv-maxrregcount=" + std::to_string(t.maxreg);
  return opts;
}

// A configuration with WG tiles (`what`: "WG tiles") or TMA chunks ("TMA chunks") runs only
// where their probe passed: `finding` is its result (mma_probe with wg, mma_tma_probe).
void require_probe(const std::string& finding, const char* what, const Context& ctx,
                   const Config& c) {
  if (!finding.empty()) {
    throw Unsupported("mma configuration " + c.str() + ": " + what + " are disabled on " +
                      ctx.device().name + ": " + finding);
  }
}

// TMA: the tensor maps of two tensors (K and V for the forward and the dQ kernel, at map words
// 0-31; Q and dO for the dK/dV kernel, at 32-63) in a 512-byte buffer, built by na_tma_kv_maps
// of the reading kernel's own program (file, opts) with boxes of `rows` tokens, enqueued before
// them, and kept by the context for later calls on the same buffers and geometry
// (Context::cached_descriptors: a map holds the buffers' addresses). Keep the returned buffer
// until the kernels that read it are enqueued.
cl::Buffer tma_maps(Context& ctx, const Problem& p, const char* file, const std::string& opts,
                    const std::string& label, int at, cl_mem a, cl_mem b, int heads, int rows,
                    Events* events) {
  const int n = p.axis[0].length * p.axis[1].length * p.axis[2].length;
  const std::string key = std::string("na_tma_kv_maps ") + file + " " + std::to_string(p.batch) +
                          " " + std::to_string(n) + " " + std::to_string(heads) + " " +
                          std::to_string(p.head_dim) + " " + std::to_string(p.head_dim_v) + " " +
                          std::to_string(rows) + " at " + std::to_string(at);
  return ctx.cached_descriptors(
      a, b, key, 512,
      [&](const cl::Buffer& maps) {
        cl::Kernel km = ctx.kernel(file, opts, "na_tma_kv_maps", label);
        return ctx.launch(km, single_group(32), maps, at, MemArg{a}, MemArg{b}, p.batch, n, heads,
                          p.head_dim, p.head_dim_v, rows);
      },
      events);
}

// The same for the forward's TMA chunks at ranks 2 and 3: K's and V's rank-5 maps at words 0-31,
// boxes of 64 dims and the chunk box, the dilations as element strides (na_tma_box_maps).
cl::Buffer tma_box_maps(Context& ctx, const Problem& p, const std::string& opts,
                        const std::string& label, const int tq[3], int tk, cl_mem k, cl_mem v,
                        Events* events) {
  int kb[3];
  chunk_box(p, tq, tk, kb);
  std::string key = "na_tma_box_maps " + std::to_string(p.batch) + " " +
                    std::to_string(p.heads_kv) + " " + std::to_string(p.head_dim);
  for (int a = 0; a < 3; ++a) {
    key += " " + std::to_string(p.axis[a].length) + "/" + std::to_string(kb[a]) + "/" +
           std::to_string(p.axis[a].dilation);
  }
  return ctx.cached_descriptors(
      k, v, key, 512,
      [&](const cl::Buffer& maps) {
        cl::Kernel km = ctx.kernel(kFwdFile, opts, "na_tma_box_maps", label);
        return ctx.launch(km, single_group(32), maps, 0, MemArg{k}, MemArg{v}, p.batch,
                          p.axis[0].length, p.axis[1].length, p.axis[2].length, p.heads_kv,
                          p.head_dim, kb[0], kb[1], kb[2]);
      },
      events);
}

}  // namespace

void MmaVariant::forward(Context& ctx, const Problem& p, const Config& c, const FwdArgs& a,
                         Events* events) const {
  const std::string why = config_error(p, ctx.device(), Pass::Forward, c);
  if (!why.empty()) throw Unsupported("mma configuration " + c.str() + ": " + why);
  const std::string probe = mma_probe(ctx, p.dtype);
  if (!probe.empty()) throw Unsupported("mma is disabled on " + ctx.device().name + ": " + probe);
  const MmaTile t = tile_of(c);
  if (t.wg) require_probe(mma_probe(ctx, p.dtype, true), "WG tiles", ctx, c);
  if (t.tma) require_probe(mma_tma_probe(ctx, p.dtype), "TMA chunks", ctx, c);
  const std::string label = name(p, c, Pass::Forward);
  // SPOS: with a positive scale the kernel folds it into the exponentials (the row maxima are
  // taken of the unscaled scores); any other scale keeps the separate multiply.
  const int spos = p.scale > 0.0f && std::isfinite(p.scale) ? 1 : 0;
  const std::string opts =
      mma_options(ctx.device(), p, t,
                  {{"TK", t.tk}, {"ROT", t.rot}, {"SPOS", spos}, {"PERSIST", t.persist ? 1 : 0}});
  cl::Kernel k = ctx.kernel(kFwdFile, opts, "na_mma_fwd", label);
  check_fits(k, ctx.device(), t.nt(), label, t.maxreg);
  int nt[3];
  Geometry g = tiled_geometry(p, t.tq, t.nt(), p.heads, nt);
  // Persistent work-groups: PERSIST a compute unit (fewer where there are fewer tiles), drawing
  // their tiles from the context's tile counter (Context::tile_counter).
  if (t.persist) {
    const std::size_t groups =
        static_cast<std::size_t>(t.persist) * std::max(1u, ctx.device().compute_units);
    g.global[0] = std::min(g.global[0], groups * g.local[0]);
  }
  const auto launch = [&](const auto&... tail) {
    return ctx.launch(k, g, MemArg{a.q}, MemArg{a.k}, MemArg{a.v}, MemArg{a.out}, MemArg{a.lse},
                      p.batch, p.axis[0].length, p.axis[1].length, p.axis[2].length, p.heads,
                      p.heads_kv, p.head_dim, p.head_dim_v, p.scale, nt[0], nt[1], nt[2], tail...);
  };
  cl::Event ev;
  if (t.tma && p.rank > 1) {
    const cl::Buffer maps = tma_box_maps(ctx, p, opts, label, t.tq, t.tk, a.k, a.v, events);
    ev = t.persist ? launch(maps, ctx.tile_counter()) : launch(maps);
  } else if (t.tma) {
    ev = launch(tma_maps(ctx, p, kFwdFile, opts, label, 0, a.k, a.v, p.heads_kv, t.tk, events));
  } else {
    ev = launch();
  }
  if (events) events->push_back(ev);
}

void MmaVariant::backward(Context& ctx, const Problem& p, const Config& c, const BwdArgs& a,
                          Events* events) const {
  const std::string why = config_error(p, ctx.device(), Pass::Backward, c);
  if (!why.empty()) throw Unsupported("mma configuration " + c.str() + ": " + why);
  const std::string probe = mma_probe(ctx, p.dtype);
  if (!probe.empty()) throw Unsupported("mma is disabled on " + ctx.device().name + ": " + probe);
  const MmaTile t = tile_of(c);
  const MmaTile kt = dkdv_tile_of(c, p);
  if (t.wg || kt.wg) require_probe(mma_probe(ctx, p.dtype, true), "WG tiles", ctx, c);
  if (t.tma || kt.tma) require_probe(mma_tma_probe(ctx, p.dtype), "TMA chunks", ctx, c);
  const std::string label = name(p, c, Pass::Backward);
  const std::string dq_opts = mma_options(
      ctx.device(), p, t,
      {{"TK", t.tk}, {"MMA_DQ", 1}, {"DQ_DELTA", dq_delta_of(c)}, {"DQ_DEFER", dq_defer_of(c)}});
  cl::Kernel k_dq = ctx.kernel(kFwdFile, dq_opts, "na_mma_bwd_dq", label);
  // META_LATE (na_mma_bwd.cl): on the H100 it made flux-2d's dK/dV kernel 6% faster and
  // long-1d-causal's, under its 168-register cap, 4% slower (docs/PERFORMANCE.md, 2026-11-25
  // session 3): only without a cap, and not in the WS kernel's producer (its kept form was
  // measured with 0: tools/sweeps/ws14e.txt).
  // KSPLIT: the program twice, PART 1 (dV) and PART 2 (dK); else PART 0 (both).
  const int hdp = head_dim_bucket(p.head_dim), hdvp = head_dim_bucket(p.head_dim_v);
  const auto dkdv_options = [&](int part) {
    return mma_options(ctx.device(), p, kt,
                       {{"TQC", kt.tk},
                        {"QSUB", kt.qsub ? kt.qsub : kt.tk},
                        {"SEQ", kt.seq},
                        {"KV_REGS", kt.kv_regs(hdp, hdvp) ? 1 : 0},
                        {"META_LATE", kt.maxreg == 0 && !kt.ws ? 1 : 0},
                        {"RMETA", kt.rmeta},
                        {"PART", part},
                        {"WS", kt.ws != 0},
                        {"WS_DEFER", kt.ws == 2},
                        {"WS_ROT", kt.ws == 3},
                        {"WS_CREGS", ws_registers(kt).first},
                        {"WS_PREGS", ws_registers(kt).second}});
  };
  const auto dkdv_kernel = [&](int part) {
    return ctx.kernel(kBwdFile, dkdv_options(part), "na_mma_bwd_dkdv", label);
  };
  cl::Kernel k_dkdv = dkdv_kernel(kt.split ? 1 : 0);
  cl::Kernel k_dk = kt.split ? dkdv_kernel(2) : cl::Kernel();
  const TiledKernel second{&k_dk, kt.tq, kt.nt(), 0, kt.maxreg};
  TiledKernel dq{&k_dq, t.tq, t.nt(), 0, t.maxreg};
  TiledKernel dkdv{&k_dkdv, kt.tq, kt.nt(), 0, kt.maxreg};
  cl::Buffer dq_maps, dkdv_maps;  // TMA: held until the kernels are enqueued
  if (t.tma) {
    dq_maps = tma_maps(ctx, p, kFwdFile, dq_opts, label, 0, a.k, a.v, p.heads_kv, t.tk, events);
    dq.tail_mem = dq_maps();
  }
  if (kt.tma) {
    dkdv_maps = tma_maps(ctx, p, kBwdFile, dkdv_options(0), label, 32, a.q, a.d_out, p.heads, kt.tk,
                         events);
    dkdv.tail_mem = dkdv_maps();
  }
  launch_tiled_backward(ctx, p, dq, dkdv, a, label, events, kt.split ? &second : nullptr,
                        dq_delta_of(c) == 1);
}

}  // namespace openna
