// Placeholder C file so the target builds before kernels land.
#include "cvlm.h"
