// The one door to the native libraries: Debian's OpenBLAS (cblas.h, with the
// openblas_* thread controls) and LAPACKE. Only TensorCore imports this module.
#ifndef ADWB_COPENBLAS_SHIM_H
#define ADWB_COPENBLAS_SHIM_H
#include <cblas.h>
#include <lapacke.h>
// glibc's mallopt, used once at start-up to keep large tensor blocks on the heap.
#if __has_include(<malloc.h>)
#include <malloc.h>
#endif
#endif
