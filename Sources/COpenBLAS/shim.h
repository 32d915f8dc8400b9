// The one door to the native libraries: Debian's OpenBLAS (cblas.h, with the
// openblas_* thread controls) and LAPACKE. Only TensorCore imports this module.
#ifndef ADWB_COPENBLAS_SHIM_H
#define ADWB_COPENBLAS_SHIM_H
#include <cblas.h>
#include <lapacke.h>
#endif
