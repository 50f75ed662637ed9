/* A C program that uses openna: forward and backward of a 2-D neighborhood attention on the
 * default device (or OPENNA_DEVICE). With every value vector equal, the output must equal it. */
#include <math.h>
#include <openna/openna.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
  openna_context* ctx = NULL;
  if (openna_context_create(NULL, &ctx) != OPENNA_OK) {
    fprintf(stderr, "openna: %s\n", openna_last_error());
    return 1;
  }

  /* A 16x16 grid, 5x5 window, 4 heads of dimension 32, float32. Zero fields take defaults. */
  openna_problem p = {0};
  p.dtype = OPENNA_F32;
  p.rank = 2;
  p.batch = 1;
  p.spatial[0] = p.spatial[1] = 16;
  p.kernel_size[0] = p.kernel_size[1] = 5;
  p.heads = 4;
  p.head_dim = 32;

  openna_tensor_bytes b;
  if (openna_problem_bytes(&p, &b) != OPENNA_OK) {
    fprintf(stderr, "openna: %s\n", openna_last_error());
    return 1;
  }
  float* q = malloc(b.q);
  float* k = malloc(b.k);
  float* v = malloc(b.v);
  float* out = malloc(b.out);
  float* lse = malloc(b.lse);
  float* d_q = malloc(b.q);
  float* d_k = malloc(b.k);
  float* d_v = malloc(b.v);
  for (size_t i = 0; i < b.q / sizeof(float); ++i) q[i] = (float)((i * 7 % 13) / 13.0 - 0.5);
  for (size_t i = 0; i < b.k / sizeof(float); ++i) k[i] = (float)((i * 5 % 11) / 11.0 - 0.5);
  for (size_t i = 0; i < b.v / sizeof(float); ++i) v[i] = 0.25f;

  openna_status s = openna_na_forward_host(ctx, &p, q, k, v, out, lse);
  if (s == OPENNA_OK) {
    /* out doubles as d_out here: any tensor of out's shape will do for a demonstration. */
    s = openna_na_backward_host(ctx, &p, q, k, v, out, out, lse, d_q, d_k, d_v);
  }
  if (s != OPENNA_OK) {
    fprintf(stderr, "openna error %d: %s\n", (int)s, openna_last_error());
    return 1;
  }
  printf("openna %s on %s: out[0] = %g, lse[0] = %g, d_v[0] = %g\n",
         openna_version(NULL, NULL, NULL), openna_context_device_name(ctx), out[0], lse[0], d_v[0]);
  const int ok = fabsf(out[0] - 0.25f) < 1e-5f && isfinite(lse[0]);

  free(q), free(k), free(v), free(out), free(lse), free(d_q), free(d_k), free(d_v);
  openna_context_destroy(ctx);
  return ok ? 0 : 2;
}
