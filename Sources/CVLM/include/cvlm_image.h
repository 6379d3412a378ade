// Image codecs (libjpeg-turbo, libpng) behind setjmp-safe wrappers. Owned by the image front end.
#ifndef CVLM_IMAGE_H
#define CVLM_IMAGE_H
#include <stddef.h>
#include <stdint.h>
#endif
