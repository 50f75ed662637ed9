/* openna: device-resident entry points and interop with an application's own OpenCL objects.
 * Buffers are cl_mem in the layouts of SPEC.md section 5; work is enqueued on the context's
 * command queue and the call returns without waiting for it (openna_context_finish waits). */
#ifndef OPENNA_OPENNA_CL_H_
#define OPENNA_OPENNA_CL_H_

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 300 /* the headers' own default, stated to keep them quiet */
#endif
#include <CL/cl.h>

#include "openna/openna.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A context around an application's own OpenCL objects. The library retains them (and releases
   them on destroy); the queue must belong to the context and the device. Timings through the
   bench need CL_QUEUE_PROFILING_ENABLE; the library itself works without it. Out-of-order queues
   are not supported (OPENNA_ERROR_UNSUPPORTED). */
OPENNA_API openna_status openna_context_create_from_cl(cl_context context, cl_device_id device,
                                                       cl_command_queue queue,
                                                       openna_context** out);

OPENNA_API cl_context openna_context_cl_context(const openna_context* ctx);
OPENNA_API cl_device_id openna_context_cl_device(const openna_context* ctx);
OPENNA_API cl_command_queue openna_context_cl_queue(const openna_context* ctx);

/* Blocks until everything enqueued on the context's queue has finished. */
OPENNA_API openna_status openna_context_finish(openna_context* ctx);

/* Forward on device buffers. lse may be NULL. Buffers must hold at least the bytes that
   openna_problem_bytes reports; out and lse must not alias the inputs. */
OPENNA_API openna_status openna_na_forward(openna_context* ctx, const openna_problem* p, cl_mem q,
                                           cl_mem k, cl_mem v, cl_mem out, cl_mem lse);

/* Backward on device buffers. lse is the forward's (required). */
OPENNA_API openna_status openna_na_backward(openna_context* ctx, const openna_problem* p,
                                            cl_mem q, cl_mem k, cl_mem v, cl_mem out,
                                            cl_mem d_out, cl_mem lse, cl_mem d_q, cl_mem d_k,
                                            cl_mem d_v);

#ifdef __cplusplus
}
#endif

#endif /* OPENNA_OPENNA_CL_H_ */
