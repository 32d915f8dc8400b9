// The one door to the native libraries: Debian's OpenBLAS (cblas.h, with the
// openblas_* thread controls) and LAPACKE, plus two glibc calls TensorCore needs at
// start-up. Only TensorCore imports this module.
#ifndef ADWB_COPENBLAS_SHIM_H
#define ADWB_COPENBLAS_SHIM_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <cblas.h>
#include <lapacke.h>
// glibc's mallopt, used once at start-up to keep large tensor blocks on the heap.
#if __has_include(<malloc.h>)
#include <malloc.h>
#endif
#if __has_include(<sched.h>) && defined(__linux__)
#include <sched.h>
// CPUs in this process's affinity mask (what `taskset` allows), 0 when unknown.
// CPU_COUNT is a macro, so Swift reaches it through this function.
static inline int adwb_affinity_cpu_count(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
    return CPU_COUNT(&set);
}
#else
static inline int adwb_affinity_cpu_count(void) { return 0; }
#endif
#endif
