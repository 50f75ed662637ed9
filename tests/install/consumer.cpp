// A C++ program that uses openna: a dilated 2-D forward and backward on host memory, then the
// forward again on device buffers of the context's own OpenCL context. Failures throw
// openna::Error (status and message).
#include <cmath>
#include <cstdio>
#include <openna/openna.hpp>
#include <vector>

int main() try {
  openna::Context ctx;  // default device, or OPENNA_DEVICE; "cpu", "gpu", "0:1", "nvidia"...

  // A 16x16 grid, 5x5 window with dilation 2, 4 heads of dimension 32, float32.
  const auto p = openna::Problem({16, 16}, {5}, 4, 32, OPENNA_F32).with_dilation({2});
  const openna_tensor_bytes b = p.bytes();
  std::vector<float> q(b.q / 4, 0.1f), k(b.k / 4, -0.2f), v(b.v / 4, 0.5f);
  std::vector<float> out(b.out / 4), lse(b.lse / 4), d_q(b.q / 4), d_k(b.k / 4), d_v(b.v / 4);
  ctx.forward(p, q.data(), k.data(), v.data(), out.data(), lse.data());
  ctx.backward(p, q.data(), k.data(), v.data(), out.data(), /*d_out=*/out.data(), lse.data(),
               d_q.data(), d_k.data(), d_v.data());

  // The same forward on device buffers (enqueued on ctx's queue; finish() waits).
  cl::Context cl_ctx(ctx.opencl_context(), /*retainObject=*/true);
  cl::CommandQueue queue(ctx.opencl_queue(), /*retainObject=*/true);
  cl::Buffer bq(cl_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, b.q, q.data());
  cl::Buffer bk(cl_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, b.k, k.data());
  cl::Buffer bv(cl_ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, b.v, v.data());
  cl::Buffer bout(cl_ctx, CL_MEM_READ_WRITE, b.out);
  ctx.forward(p, bq, bk, bv, bout);
  std::vector<float> out2(b.out / 4);
  queue.enqueueReadBuffer(bout, CL_TRUE, 0, b.out, out2.data());

  std::printf("openna %s on %s with %s: out[0] = %g, device out[0] = %g\n",
              openna::version().c_str(), ctx.device_name().c_str(), ctx.selected_variant(p).c_str(),
              out[0], out2[0]);
  return std::fabs(out[0] - 0.5f) < 1e-5f && out2 == out ? 0 : 2;
} catch (const openna::Error& e) {
  std::fprintf(stderr, "openna error %d: %s\n", static_cast<int>(e.status()), e.what());
  return 1;
}
