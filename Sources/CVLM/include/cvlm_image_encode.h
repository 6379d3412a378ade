// Image encoders (PNG/JPEG writing) for generated data. Owned by the scenes generator.
#ifndef CVLM_IMAGE_ENCODE_H
#define CVLM_IMAGE_ENCODE_H
#include <stddef.h>
#include <stdint.h>
#endif
