// The program cache, observed through the public counters (openna_get_cache_stats), never through
// timings: a first build is a disk miss and a write, a new context loads the entry from disk, the
// same context hits memory; truncated, corrupted and foreign entries are rejected, rebuilt and
// replaced with results unchanged; OPENNA_DISK_CACHE=0 writes nothing; an unusable cache folder
// never fails a call; OPENNA_KERNEL_DEFINES is part of the key. Every test uses a fresh
// temporary OPENNA_CACHE_DIR and counts deltas.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "api_test_util.hpp"
#include "core/errors.hpp"
#include "runtime/program_cache.hpp"

namespace fs = std::filesystem;

namespace openna_test {
namespace {

// Head dims no other test uses, so that this test's kernel specializations are its own.
openna_problem cache_problem(int head_dim = 13) {
  openna_problem p{};
  p.dtype = OPENNA_F32;
  p.rank = 1;
  p.batch = 1;
  p.spatial[0] = 9;
  p.kernel_size[0] = 5;
  p.stride[0] = 2;
  p.heads = 2;
  p.head_dim = head_dim;
  p.head_dim_v = 11;
  return p;
}

openna_cache_stats stats() {
  openna_cache_stats s{};
  openna_get_cache_stats(&s);
  return s;
}

openna_cache_stats operator-(const openna_cache_stats& a, const openna_cache_stats& b) {
  openna_cache_stats d{};
  d.memory_hits = a.memory_hits - b.memory_hits;
  d.disk_hits = a.disk_hits - b.disk_hits;
  d.disk_misses = a.disk_misses - b.disk_misses;
  d.disk_rejected = a.disk_rejected - b.disk_rejected;
  d.disk_writes = a.disk_writes - b.disk_writes;
  return d;
}

std::string describe(const openna_cache_stats& d) {
  return "memory_hits " + std::to_string(d.memory_hits) + ", disk_hits " +
         std::to_string(d.disk_hits) + ", disk_misses " + std::to_string(d.disk_misses) +
         ", disk_rejected " + std::to_string(d.disk_rejected) + ", disk_writes " +
         std::to_string(d.disk_writes);
}

std::vector<fs::path> entries(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void spit(const fs::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

class Cache : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "openna-cache-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    dir_ = root_ / "cache";
    env_dir_.emplace("OPENNA_CACHE_DIR", dir_.c_str());
    // The naive variant, so that the programs a call builds are known and stable.
    env_variant_.emplace("OPENNA_VARIANT", "naive");
    env_disk_.emplace("OPENNA_DISK_CACHE", nullptr);
  }
  void TearDown() override {
    env_disk_.reset();
    env_variant_.reset();
    env_dir_.reset();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  static openna_context* fresh_context() {
    openna_context* c = nullptr;
    EXPECT_EQ(openna_context_create(nullptr, &c), OPENNA_OK) << openna_last_error();
    return c;
  }

  // Forward of `p` on fixed inputs; returns out followed by lse, as bytes.
  static std::vector<std::uint8_t> forward(openna_context* ctx, const openna_problem& p) {
    const openna_tensor_bytes b = bytes_of(p);
    const auto q = random_tensor(p.dtype, b.q, 1), k = random_tensor(p.dtype, b.k, 2),
               v = random_tensor(p.dtype, b.v, 3);
    std::vector<std::uint8_t> res(b.out + b.lse, 0);
    EXPECT_EQ(openna_na_forward_host(ctx, &p, q.data(), k.data(), v.data(), res.data(),
                                     reinterpret_cast<float*>(res.data() + b.out)),
              OPENNA_OK)
        << openna_last_error();
    return res;
  }

  static std::vector<std::uint8_t> backward(openna_context* ctx, const openna_problem& p) {
    const openna_tensor_bytes b = bytes_of(p);
    const auto q = random_tensor(p.dtype, b.q, 1), k = random_tensor(p.dtype, b.k, 2),
               v = random_tensor(p.dtype, b.v, 3), d_out = random_tensor(p.dtype, b.out, 4);
    std::vector<std::uint8_t> out(b.out), grads(b.q + b.k + b.v);
    std::vector<float> lse(b.lse / 4);
    EXPECT_EQ(openna_na_forward_host(ctx, &p, q.data(), k.data(), v.data(), out.data(), lse.data()),
              OPENNA_OK);
    EXPECT_EQ(openna_na_backward_host(ctx, &p, q.data(), k.data(), v.data(), out.data(),
                                      d_out.data(), lse.data(), grads.data(), grads.data() + b.q,
                                      grads.data() + b.q + b.k),
              OPENNA_OK)
        << openna_last_error();
    return grads;
  }

  fs::path root_, dir_;
  std::optional<ScopedEnv> env_dir_, env_variant_, env_disk_;
};

TEST_F(Cache, MissAndWriteThenDiskHitThenMemoryHit) {
  const openna_problem p = cache_problem();
  openna_context* a = fresh_context();
  auto s0 = stats();
  const auto first = forward(a, p);
  auto d = stats() - s0;
  EXPECT_EQ(d.disk_misses, 1u) << describe(d);
  EXPECT_EQ(d.disk_writes, 1u) << describe(d);
  EXPECT_EQ(d.disk_hits, 0u) << describe(d);
  EXPECT_EQ(d.disk_rejected, 0u) << describe(d);
  const auto files = entries(dir_);
  ASSERT_EQ(files.size(), 1u) << "one entry file, no temporary left behind";
  EXPECT_EQ(files[0].extension(), ".bin");

  s0 = stats();
  EXPECT_EQ(forward(a, p), first);
  d = stats() - s0;
  EXPECT_EQ(d.memory_hits, 1u) << describe(d);
  EXPECT_EQ(d.disk_misses + d.disk_hits + d.disk_writes, 0u) << describe(d);

  openna_context* b = fresh_context();
  s0 = stats();
  EXPECT_EQ(forward(b, p), first);
  d = stats() - s0;
  EXPECT_EQ(d.disk_hits, 1u) << describe(d);
  EXPECT_EQ(d.disk_misses, 0u) << describe(d);
  EXPECT_EQ(d.disk_writes, 0u) << describe(d);
  EXPECT_EQ(d.memory_hits, 0u) << describe(d);
  EXPECT_EQ(entries(dir_), files);
  openna_context_destroy(a);
  openna_context_destroy(b);
}

// OPENNA_KERNEL_DEFINES reaches the build options and so both caches' keys: with a define set,
// the context that holds the plain program builds (and writes) another one, with the same
// results for a define that no kernel reads; unset again, it hits the plain one in memory.
TEST_F(Cache, KernelDefinesArePartOfTheKey) {
  const openna_problem p = cache_problem(19);
  openna_context* a = fresh_context();
  const auto plain = forward(a, p);
  auto s0 = stats();
  {
    ScopedEnv defines("OPENNA_KERNEL_DEFINES", "-DOPENNA_CACHE_TEST_UNUSED=1");
    EXPECT_EQ(forward(a, p), plain);
    const auto d = stats() - s0;
    EXPECT_EQ(d.memory_hits, 0u) << describe(d);
    EXPECT_EQ(d.disk_misses, 1u) << describe(d);
    EXPECT_EQ(d.disk_writes, 1u) << describe(d);
  }
  EXPECT_EQ(entries(dir_).size(), 2u);
  s0 = stats();
  EXPECT_EQ(forward(a, p), plain);
  const auto d = stats() - s0;
  EXPECT_EQ(d.memory_hits, 1u) << describe(d);
  EXPECT_EQ(d.disk_misses + d.disk_hits + d.disk_writes, 0u) << describe(d);
  openna_context_destroy(a);
}

// Whatever programs the backward needs are cached too: a new context builds none of them.
TEST_F(Cache, BackwardProgramsComeFromDiskInANewContext) {
  const openna_problem p = cache_problem(15);
  openna_context* a = fresh_context();
  auto s0 = stats();
  const auto first = backward(a, p);
  auto d = stats() - s0;
  EXPECT_GE(d.disk_writes, 1u) << describe(d);
  EXPECT_EQ(d.disk_writes, d.disk_misses) << describe(d);
  openna_context* b = fresh_context();
  s0 = stats();
  EXPECT_EQ(backward(b, p), first);
  d = stats() - s0;
  EXPECT_EQ(d.disk_misses, 0u) << describe(d);
  EXPECT_GE(d.disk_hits, 1u) << describe(d);
  openna_context_destroy(a);
  openna_context_destroy(b);
}

enum class Damage { Truncate, Empty, FlipByte, Garbage, OtherEntry };

const char* damage_name(Damage d) {
  switch (d) {
    case Damage::Truncate:
      return "truncated";
    case Damage::Empty:
      return "empty";
    case Damage::FlipByte:
      return "flipped_byte";
    case Damage::Garbage:
      return "foreign_bytes";
    case Damage::OtherEntry:
      return "other_entry";
  }
  return "unknown";
}
void PrintTo(Damage d, std::ostream* os) { *os << damage_name(d); }

class CacheDamage : public Cache, public ::testing::WithParamInterface<Damage> {};

TEST_P(CacheDamage, EntryRejectedRebuiltAndReplaced) {
  const openna_problem p = cache_problem();
  openna_context* a = fresh_context();
  const auto first = forward(a, p);
  const auto files = entries(dir_);
  ASSERT_EQ(files.size(), 1u);
  const fs::path entry = files[0];
  const std::string good = slurp(entry);
  ASSERT_GT(good.size(), 64u);

  std::string bad;
  switch (GetParam()) {
    case Damage::Truncate:
      bad = good.substr(0, good.size() / 2);
      break;
    case Damage::Empty:
      break;
    case Damage::FlipByte:
      bad = good;
      bad[bad.size() / 2] = static_cast<char>(bad[bad.size() / 2] ^ 0x40);
      break;
    case Damage::Garbage: {
      const auto junk = random_tensor(OPENNA_F32, good.size(), 77);
      bad.assign(junk.begin(), junk.end());
      break;
    }
    case Damage::OtherEntry: {
      // A well-formed entry of another program under this entry's name.
      forward(a, cache_problem(17));
      for (const auto& f : entries(dir_))
        if (f != entry) bad = slurp(f);
      ASSERT_FALSE(bad.empty());
      break;
    }
  }
  spit(entry, bad);

  openna_context* b = fresh_context();
  auto s0 = stats();
  EXPECT_EQ(forward(b, p), first) << "results must not depend on the damaged entry";
  auto d = stats() - s0;
  EXPECT_EQ(d.disk_rejected, 1u) << describe(d);
  EXPECT_EQ(d.disk_hits, 0u) << describe(d);
  EXPECT_EQ(d.disk_misses, 1u) << describe(d);
  EXPECT_EQ(d.disk_writes, 1u) << describe(d);
  EXPECT_EQ(slurp(entry), good) << "the damaged entry should be replaced by a good one";

  openna_context* c = fresh_context();
  s0 = stats();
  EXPECT_EQ(forward(c, p), first);
  d = stats() - s0;
  EXPECT_EQ(d.disk_hits, 1u) << describe(d);
  EXPECT_EQ(d.disk_rejected, 0u) << describe(d);
  openna_context_destroy(a);
  openna_context_destroy(b);
  openna_context_destroy(c);
}

INSTANTIATE_TEST_SUITE_P(Modes, CacheDamage,
                         ::testing::Values(Damage::Truncate, Damage::Empty, Damage::FlipByte,
                                           Damage::Garbage, Damage::OtherEntry),
                         [](const auto& info) { return std::string(damage_name(info.param)); });

TEST_F(Cache, DisabledCacheWritesAndReadsNothing) {
  const openna_problem p = cache_problem();
  // A valid entry exists, from a run with the cache on.
  openna_context* a = fresh_context();
  const auto first = forward(a, p);
  const auto files = entries(dir_);
  ASSERT_EQ(files.size(), 1u);
  fs::remove(files[0]);
  for (const char* off : {"0", "off"}) {
    ScopedEnv disable("OPENNA_DISK_CACHE", off);
    openna_context* b = fresh_context();
    const auto s0 = stats();
    EXPECT_EQ(forward(b, p), first);
    const auto d = stats() - s0;
    EXPECT_EQ(d.disk_writes, 0u) << off << ": " << describe(d);
    EXPECT_EQ(d.disk_hits, 0u) << off << ": " << describe(d);
    EXPECT_TRUE(entries(dir_).empty()) << "OPENNA_DISK_CACHE=" << off << " wrote a file";
    openna_context_destroy(b);
  }
  // With an entry present, a disabled cache does not read it either.
  openna_context* c = fresh_context();
  forward(c, p);
  ASSERT_EQ(entries(dir_).size(), 1u);
  ScopedEnv disable("OPENNA_DISK_CACHE", "0");
  openna_context* e = fresh_context();
  const auto s0 = stats();
  EXPECT_EQ(forward(e, p), first);
  EXPECT_EQ((stats() - s0).disk_hits, 0u);
  openna_context_destroy(a);
  openna_context_destroy(c);
  openna_context_destroy(e);
}

// A cache folder that cannot be created or written: under a regular file, or a regular file
// itself. Calls still succeed with the same results; nothing is counted as written.
TEST_F(Cache, UnusableFolderNeverFailsACall) {
  const openna_problem p = cache_problem();
  openna_context* a = fresh_context();
  const auto first = forward(a, p);
  const fs::path file = root_ / "a-regular-file";
  spit(file, "not a folder");
  for (const fs::path& bad : {file / "cache", file}) {
    ScopedEnv env("OPENNA_CACHE_DIR", bad.c_str());
    openna_context* b = fresh_context();
    const auto s0 = stats();
    EXPECT_EQ(forward(b, p), first) << bad;
    const auto d = stats() - s0;
    EXPECT_EQ(d.disk_writes, 0u) << bad << ": " << describe(d);
    EXPECT_EQ(slurp(file), "not a folder");
    openna_context_destroy(b);
  }
  openna_context_destroy(a);
}

// Without OPENNA_CACHE_DIR the cache lives in $XDG_CACHE_HOME/openna.
TEST_F(Cache, DefaultsToXdgCacheHome) {
  ScopedEnv no_dir("OPENNA_CACHE_DIR", nullptr);
  ScopedEnv xdg("XDG_CACHE_HOME", root_.c_str());
  openna_context* a = fresh_context();
  const auto s0 = stats();
  forward(a, cache_problem());
  EXPECT_EQ((stats() - s0).disk_writes, 1u);
  EXPECT_EQ(entries(root_ / "openna").size(), 1u);
  openna_context_destroy(a);
}

}  // namespace
// The sm_90a rewrite of marked PTX (na_wgmma.h's instructions): pure text, checked here so that
// CI covers it; the GPU run checks the programs themselves (test_mma's WG tests).
TEST(Sm90aRewrite, UncommentsMarkedLinesAndRaisesTheTarget) {
  const std::string ptx =
      "//\n// Generated by NVIDIA NVVM Compiler\n.version 7.8\n.target sm_90, texmode_independent\n"
      ".address_size 64\n\t// begin inline asm\n\t// @sm_90a@ wgmma.fence.sync.aligned;\n"
      "\t// end inline asm\n\t// an ordinary comment @sm_90a@ stays\n\tret;\n";
  const std::string out = openna::sm90a_rewrite(ptx);
  EXPECT_NE(std::string::npos, out.find(".version 8.0\n"));
  EXPECT_NE(std::string::npos, out.find(".target sm_90a, texmode_independent\n"));
  EXPECT_NE(std::string::npos, out.find("\n\twgmma.fence.sync.aligned;\n"));
  EXPECT_EQ(std::string::npos, out.find("// @sm_90a@ wgmma"));
  EXPECT_NE(std::string::npos, out.find("// an ordinary comment @sm_90a@ stays"));
  // A newer PTX version is kept; a target other than sm_90 is refused.
  EXPECT_NE(std::string::npos, openna::sm90a_rewrite(".version 9.0\n.target sm_90\n")
                                   .find(".version 9.0\n.target sm_90a\n"));
  EXPECT_THROW(openna::sm90a_rewrite(".version 9.0\n.target sm_80\n"), openna::BuildError);
  // A marked tensormap instruction (na_sm90.h) needs PTX ISA 8.3: 7.8 and 8.0 become 8.3.
  for (const char* v : {"7.8", "8.0"}) {
    const std::string tm = std::string(".version ") + v +
                           "\n.target sm_90\n\t// @sm_90a@ tensormap.replace.tile.rank"
                           ".shared::cta.b1024.b32 [%r1], 3;\n";
    EXPECT_NE(std::string::npos, openna::sm90a_rewrite(tm).find(".version 8.3\n")) << v;
  }
  // A register cap goes between each kernel's parameters and its body.
  const std::string entry =
      ".version 9.0\n.target sm_90\n.entry k(\n\t.param .u32 k_param_0\n)\n.reqntid 128, 1, 1\n{\n"
      "\tret;\n}\n";
  EXPECT_NE(std::string::npos,
            openna::sm90a_rewrite(entry, 168).find(".reqntid 128, 1, 1\n.maxnreg 168\n{\n"));
  EXPECT_EQ(std::string::npos, openna::sm90a_rewrite(entry).find(".maxnreg"));
  EXPECT_THROW(openna::sm90a_rewrite(".version 9.0\n"), openna::BuildError);
}

}  // namespace openna_test
