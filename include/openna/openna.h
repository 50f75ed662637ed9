/* openna: neighborhood attention on any OpenCL device.
 * The C interface. The names and signatures of SPEC.md section 6 are fixed; everything below the
 * "additions" line was added on top of them. Device-resident entry points (cl_mem) live in
 * openna_cl.h so that this header needs no OpenCL headers. */
#ifndef OPENNA_OPENNA_H_
#define OPENNA_OPENNA_H_

#include <stddef.h>

#include "openna/openna_export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct openna_context openna_context;

typedef enum {
  OPENNA_OK = 0,
  OPENNA_ERROR_INVALID_ARGUMENT = 1,
  OPENNA_ERROR_UNSUPPORTED = 2,
  OPENNA_ERROR_NO_DEVICE = 3,
  OPENNA_ERROR_OUT_OF_MEMORY = 4,
  OPENNA_ERROR_BUILD = 5,
  OPENNA_ERROR_DEVICE = 6
} openna_status;

typedef enum { OPENNA_F32 = 0, OPENNA_F16 = 1, OPENNA_BF16 = 2 } openna_dtype;

typedef struct {
  openna_dtype dtype;
  int rank;       /* 1, 2 or 3 */
  int batch;
  int spatial[3]; /* first `rank` entries used */
  int heads;
  int heads_kv;   /* 0 means heads */
  int head_dim;
  int head_dim_v; /* 0 means head_dim */
  int kernel_size[3];
  int stride[3];    /* 0 means 1 */
  int dilation[3];  /* 0 means 1 */
  int is_causal[3]; /* 0 or 1 */
  float scale;      /* 0 means 1/sqrt(head_dim) */
} openna_problem;

/* device: NULL or "" for the default (first GPU, else first CPU), or "gpu", "cpu",
   "P:D" (platform and device indices), or a case-insensitive substring of the
   platform or device name ("nvidia", "pocl"). The environment variable
   OPENNA_DEVICE is used when device is NULL or "". */
OPENNA_API openna_status openna_context_create(const char* device, openna_context** out);
OPENNA_API void openna_context_destroy(openna_context* ctx);
OPENNA_API const char* openna_context_device_name(const openna_context* ctx);

/* The message of the calling thread's last failed call; "" if none. */
OPENNA_API const char* openna_last_error(void);

/* Host-memory entry points: copy in, run, copy out, block until done. lse may be NULL. */
OPENNA_API openna_status openna_na_forward_host(openna_context* ctx, const openna_problem* p,
                                                const void* q, const void* k, const void* v,
                                                void* out, float* lse);
OPENNA_API openna_status openna_na_backward_host(openna_context* ctx, const openna_problem* p,
                                                 const void* q, const void* k, const void* v,
                                                 const void* out, const void* d_out,
                                                 const float* lse, void* d_q, void* d_k,
                                                 void* d_v);

/* ---- additions ------------------------------------------------------------------------------ */

#define OPENNA_VERSION_MAJOR 0
#define OPENNA_VERSION_MINOR 1
#define OPENNA_VERSION_PATCH 0

/* The version of the library actually loaded (may differ from the header's macros). Any pointer
   may be NULL. Returns the version as "major.minor.patch". */
OPENNA_API const char* openna_version(int* major, int* minor, int* patch);

/* Which pass a query is about. */
typedef enum { OPENNA_PASS_FORWARD = 0, OPENNA_PASS_BACKWARD = 1 } openna_pass;

/* The name of the kernel variant the dispatcher would run for this problem and pass on this
   context (for example "na_fwd_fused_r2_k13x13_..."), written into buf (always NUL-terminated,
   truncated to buf_size). Validates the problem like the entry points do; honours
   OPENNA_VARIANT. Nothing is built or run. */
OPENNA_API openna_status openna_select_variant(openna_context* ctx, const openna_problem* p,
                                               openna_pass pass, char* buf, size_t buf_size);

/* Checks a problem against SPEC.md's rules without a context. OPENNA_OK or
   OPENNA_ERROR_INVALID_ARGUMENT with a message in openna_last_error(). */
OPENNA_API openna_status openna_problem_validate(const openna_problem* p);

/* Bytes of each tensor of a (valid) problem, as the entry points read or write them. */
typedef struct {
  size_t q, k, v, out, lse;
} openna_tensor_bytes;
OPENNA_API openna_status openna_problem_bytes(const openna_problem* p, openna_tensor_bytes* out);

/* Counters of the program cache, process-wide (for tests and diagnostics). */
typedef struct {
  unsigned long long memory_hits;  /* program found in the in-memory cache */
  unsigned long long disk_hits;    /* program loaded from a valid disk cache entry */
  unsigned long long disk_misses;  /* no usable disk entry: built from source */
  unsigned long long disk_rejected; /* an entry existed but was corrupt, truncated or foreign */
  unsigned long long disk_writes;  /* entries written */
} openna_cache_stats;
OPENNA_API void openna_get_cache_stats(openna_cache_stats* out);

#ifdef __cplusplus
}
#endif

#endif /* OPENNA_OPENNA_H_ */
