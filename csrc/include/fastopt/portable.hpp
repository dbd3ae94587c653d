// Compiler-specific spellings behind one name, so the kernels build with GCC, clang and MSVC.
// Macros rather than inline functions: the kernels are compiled once per instruction set, and an
// inline function shared by those translation units could be linked from the AVX2 one into the
// baseline code.
#pragma once

#if defined(__GNUC__) || defined(__clang__)
// GCC's spelling: read (0) or write (1), locality 3 (all cache levels) down to 0 (none).
// The empty volatile asm is the request's side effect: GCC 12 takes __builtin_prefetch for a
// const call, marks a helper made only of prefetches (a lambda, prefetch_row) const or pure,
// and then drops the call, so the shared-row loop of fit_many and the four-row loop never
// prefetched at all (bench/README.md, M1).
#define FASTOPT_PREFETCH(addr, rw, locality)                 \
    do {                                                     \
        __builtin_prefetch((addr), (rw), (locality));        \
        __asm__ __volatile__("");                            \
    } while (0)
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#include <xmmintrin.h>
// SSE has no write hint that every x86-64 CPU takes; a read prefetch brings the line all the same.
#define FASTOPT_PREFETCH(addr, rw, locality)                                         \
    _mm_prefetch(reinterpret_cast<const char*>(addr),                               \
                 (locality) >= 3 ? _MM_HINT_T0 : (locality) == 2 ? _MM_HINT_T1      \
                                 : (locality) == 1 ? _MM_HINT_T2 : _MM_HINT_NTA)
#else
// A prefetch is only a hint: without one the results are the same, only slower.
#define FASTOPT_PREFETCH(addr, rw, locality) ((void)(addr))
#endif
