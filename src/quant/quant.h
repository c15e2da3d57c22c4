/* quant.h: the quantization layer (descriptors, fake quant, calibrators, tensor quantizers). */
#pragma once
#include "quant/calib_histogram.h"
#include "quant/calib_max.h"
#include "quant/fake_quant.h"
#include "quant/op_fake_quant.h"
#include "quant/quant_desc.h"
#include "quant/tensor_quantizer.h"
