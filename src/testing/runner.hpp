// Running one NaCase through a chosen variant and configuration on a context, with its inputs in
// device buffers: shared by the tests, the bench (--check, timing) and the tuner, so they all
// exercise variants the same way.
#pragma once

#include <vector>

#include "testing/na_case.hpp"
#include "testing/reference.hpp"
#include "variants/dispatcher.hpp"

namespace openna::testing {

// Device buffers of a case: inputs uploaded, outputs poisoned with NaN bit patterns so an
// element a kernel forgets to write shows up as non-finite.
struct DeviceCase {
  DeviceCase(Context& ctx, const NaCase& c, const CaseData& d);
  Problem problem;
  cl::Buffer q, k, v, out, lse, d_out, d_q, d_k, d_v;
  void poison_outputs(Context& ctx);
};

struct Outputs {
  std::vector<double> out, lse, d_q, d_k, d_v;
};

// Forward through `sel`; results read back as doubles.
Outputs run_forward(Context& ctx, const Selection& sel, DeviceCase& dc, Events* events = nullptr);
// Backward through `sel`, with out and lse as given in dc.out / dc.lse (fill them first, from a
// forward or from the reference).
Outputs run_backward(Context& ctx, const Selection& sel, DeviceCase& dc,
                     Events* events = nullptr);

// Writes the reference's out (rounded to the dtype) and lse into dc.out / dc.lse, so that a
// backward test does not depend on any forward kernel.
void upload_forward(Context& ctx, DeviceCase& dc, const RefForward& ref);

}  // namespace openna::testing
