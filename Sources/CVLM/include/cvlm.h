// Umbrella header of the CVLM target: every piece of C/SIMD code in SwiftVLM lives here.
#ifndef CVLM_H
#define CVLM_H
#include "cvlm_kernels.h"
#include "cvlm_conv.h"
#include "cvlm_image.h"
#include "cvlm_image_encode.h"
#include "cvlm_image_dl.h"
#endif
