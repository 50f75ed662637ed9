// openna-bench's device probe (clpeak-style): the f32 FMA peak and the copy bandwidth that the
// bench divides measured throughput by. Built by bench/probe.cpp with the plain C++ bindings;
// not part of the library's kernels.

// Eight independent chains per work-item: a CPU device (PoCL runs work-items in a loop, one
// vector of them at a time) needs instruction-level parallelism to cover the FMA latency; a GPU
// covers it with other warps and loses nothing.
#define STEP(x, y) \
  x = fma(y, x, y); \
  y = fma(x, y, x);
#define STEP8 \
  STEP(x0, y0) STEP(x1, y1) STEP(x2, y2) STEP(x3, y3) STEP(x4, y4) STEP(x5, y5) STEP(x6, y6) \
  STEP(x7, y7)
#define STEP64 STEP8 STEP8 STEP8 STEP8

// 128 FMAs (256 FLOPs per vector lane) per iteration and work-item, for each vector width.
#define FMA_KERNEL(NAME, T)                                                                 \
  __kernel void NAME(__global T* out, int iters, float a) {                                 \
    const float id = (float)get_local_id(0);                                                \
    T x0 = (T)(a), x1 = (T)(a + 1.0f), x2 = (T)(a + 2.0f), x3 = (T)(a + 3.0f);              \
    T x4 = (T)(a + 4.0f), x5 = (T)(a + 5.0f), x6 = (T)(a + 6.0f), x7 = (T)(a + 7.0f);       \
    T y0 = (T)(id), y1 = (T)(id + 1.0f), y2 = (T)(id + 2.0f), y3 = (T)(id + 3.0f);          \
    T y4 = (T)(id + 4.0f), y5 = (T)(id + 5.0f), y6 = (T)(id + 6.0f), y7 = (T)(id + 7.0f);   \
    for (int i = 0; i < iters; ++i) {                                                       \
      STEP64 STEP64                                                                         \
    }                                                                                       \
    /* Every chain feeds the store, so none can be optimized away. */                       \
    out[get_global_id(0)] = (x0 + y0) + (x1 + y1) + (x2 + y2) + (x3 + y3) + (x4 + y4) +     \
                            (x5 + y5) + (x6 + y6) + (x7 + y7);                              \
  }

FMA_KERNEL(fma_peak_1, float)
FMA_KERNEL(fma_peak_2, float2)
FMA_KERNEL(fma_peak_4, float4)
FMA_KERNEL(fma_peak_8, float8)
FMA_KERNEL(fma_peak_16, float16)

// Copy bandwidth: every byte read once and written once.
__kernel void copy_f4(__global const float4* restrict src, __global float4* restrict dst) {
  const size_t i = get_global_id(0);
  dst[i] = src[i];
}
