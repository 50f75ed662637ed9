// DeviceCase and the run helpers (see runner.hpp).
#include "testing/runner.hpp"

#include <cstring>

#include "core/problem.hpp"

namespace openna::testing {

namespace {

cl::Buffer upload(Context& ctx, const std::vector<std::uint8_t>& raw) {
  return cl::Buffer(ctx.ocl_context(), CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, raw.size(),
                    const_cast<std::uint8_t*>(raw.data()));
}

void poison(Context& ctx, cl::Buffer& b, std::size_t bytes) {
  std::vector<std::uint8_t> nan(bytes, 0xff);  // all-ones: NaN in f32, f16 and bf16
  ctx.queue().enqueueWriteBuffer(b, CL_TRUE, 0, bytes, nan.data());
}

std::vector<double> read(Context& ctx, const cl::Buffer& b, std::size_t n, openna_dtype dtype) {
  std::vector<std::uint8_t> raw(n * dtype_size(dtype));
  ctx.queue().enqueueReadBuffer(b, CL_TRUE, 0, raw.size(), raw.data());
  return from_storage(raw.data(), n, dtype);
}

}  // namespace

DeviceCase::DeviceCase(Context& ctx, const NaCase& c, const CaseData& d)
    : problem(normalize(&c.problem)) {
  const openna_tensor_bytes b = tensor_bytes(problem);
  q = upload(ctx, d.q);
  k = upload(ctx, d.k);
  v = upload(ctx, d.v);
  d_out = upload(ctx, d.d_out);
  out = ctx.alloc(b.out);
  lse = ctx.alloc(b.lse);
  d_q = ctx.alloc(b.q);
  d_k = ctx.alloc(b.k);
  d_v = ctx.alloc(b.v);
  poison_outputs(ctx);
}

void DeviceCase::poison_outputs(Context& ctx) {
  const openna_tensor_bytes b = tensor_bytes(problem);
  poison(ctx, out, b.out);
  poison(ctx, lse, b.lse);
  poison(ctx, d_q, b.q);
  poison(ctx, d_k, b.k);
  poison(ctx, d_v, b.v);
}

Outputs run_forward(Context& ctx, const Selection& sel, DeviceCase& dc, Events* events) {
  const Problem& p = dc.problem;
  sel.variant->forward(ctx, p, sel.config, {dc.q(), dc.k(), dc.v(), dc.out(), dc.lse()}, events);
  Outputs o;
  o.out = read(ctx, dc.out, static_cast<std::size_t>(p.out_elems()), p.dtype);
  o.lse = read(ctx, dc.lse, static_cast<std::size_t>(p.lse_elems()), OPENNA_F32);
  return o;
}

Outputs run_backward(Context& ctx, const Selection& sel, DeviceCase& dc, Events* events) {
  const Problem& p = dc.problem;
  sel.variant->backward(
      ctx, p, sel.config,
      {dc.q(), dc.k(), dc.v(), dc.out(), dc.d_out(), dc.lse(), dc.d_q(), dc.d_k(), dc.d_v()},
      events);
  Outputs o;
  o.d_q = read(ctx, dc.d_q, static_cast<std::size_t>(p.q_elems()), p.dtype);
  o.d_k = read(ctx, dc.d_k, static_cast<std::size_t>(p.k_elems()), p.dtype);
  o.d_v = read(ctx, dc.d_v, static_cast<std::size_t>(p.v_elems()), p.dtype);
  return o;
}

void upload_forward(Context& ctx, DeviceCase& dc, const RefForward& ref) {
  const std::vector<std::uint8_t> out = to_storage(ref.out, dc.problem.dtype);
  std::vector<float> lse(ref.lse.begin(), ref.lse.end());
  ctx.queue().enqueueWriteBuffer(dc.out, CL_TRUE, 0, out.size(), out.data());
  ctx.queue().enqueueWriteBuffer(dc.lse, CL_TRUE, 0, lse.size() * sizeof(float), lse.data());
}

}  // namespace openna::testing
