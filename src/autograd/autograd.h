/* autograd.h: the whole engine API (tensors, context, tape, ops). */
#pragma once
#include "autograd/graph.h"
#include "autograd/ops.h"
#include "autograd/rng.h"
#include "autograd/tensor.h"
