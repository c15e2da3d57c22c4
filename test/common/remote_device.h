/* remote_device.h: a test device whose memory the host cannot read. Every entry of its tables runs the CPU kernel
 * after translating the addresses: device address = host address + 2^63, non-canonical on x86-64, so any dereference
 * of tensor memory outside a kernel faults. Everything the engine does on it must equal the CPU bit for bit. */
#pragma once
#include "autograd/autograd.h"

/* A context on the remote device (tensors report QB_CPU as their device; table name "remote"). */
qb_ctx *remote_ctx_new(uint64_t seed, qb_err *err);
