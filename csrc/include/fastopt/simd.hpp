// The two loops that bound an epoch's arithmetic (dot products, gradient updates) and the
// finiteness checks, in double whatever the data's type. Compiled once per instruction set
// (csrc/dispatch/): the AVX2 build uses its registers, with the same sums in the same order.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "fastopt/portable.hpp"
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#ifndef FASTOPT_ISA
#define FASTOPT_ISA baseline
#endif

namespace fastopt {
namespace FASTOPT_ISA {

// Infinite or NaN, on the bits (an all-ones exponent), so that loops over it vectorize: the
// exact sparse epoch checks every coordinate of the gradient at every update.
template <class T>
inline bool nonfinite(T v) noexcept {
    using Bits = std::conditional_t<sizeof(T) == 8, uint64_t, uint32_t>;
    constexpr Bits exponent = sizeof(T) == 8 ? Bits(0x7ff0000000000000ull) : Bits(0x7f800000u);
    Bits bits;
    std::memcpy(&bits, &v, sizeof(T));
    return (bits & exponent) == exponent;
}

template <class T>
inline bool all_finite(const T* v, int64_t p) noexcept {
    uint64_t bad = 0;
    for (int64_t j = 0; j < p; ++j) bad |= uint64_t(nonfinite(v[j]));
    return bad == 0;
}

// The two loops that bound an epoch's arithmetic: dot products and gradient updates, in double.
// Sixteen lanes summed in a fixed order, so every build adds in the same order; the AVX2 build
// also fuses multiply and add (the optimizer kernels never fuse: they match the NumPy reference
// bit for bit).
inline double madd(double a, double b, double c) noexcept {
#ifdef __FMA__
    return std::fma(a, b, c);
#else
    return a * b + c;
#endif
}

#if defined(__AVX2__) && defined(__FMA__)
inline __m256d load4(const double* x) noexcept { return _mm256_loadu_pd(x); }
inline __m256d load4(const float* x) noexcept { return _mm256_cvtps_pd(_mm_loadu_ps(x)); }
#endif

// `ahead` (or null): d * sizeof(T) bytes from there requested, a cache line per 64 bytes of x
// read (rows read in order: stream_ahead in rows.hpp).
template <class T>
inline double dot(const double* __restrict w, const T* __restrict x, int64_t d,
                  const char* ahead = nullptr) noexcept {
    // 16 lanes: four independent chains hide the latency of the multiply-adds.
    double acc[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    int64_t j = 0;
#if defined(__AVX2__) && defined(__FMA__)
    __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
    for (; j + 16 <= d; j += 16) {
        if (ahead) {
            FASTOPT_PREFETCH(ahead + j * int64_t(sizeof(T)), 0, 3);
            if (sizeof(T) == 8) FASTOPT_PREFETCH(ahead + j * int64_t(sizeof(T)) + 64, 0, 3);
        }
        a0 = _mm256_fmadd_pd(_mm256_loadu_pd(w + j), load4(x + j), a0);
        a1 = _mm256_fmadd_pd(_mm256_loadu_pd(w + j + 4), load4(x + j + 4), a1);
        a2 = _mm256_fmadd_pd(_mm256_loadu_pd(w + j + 8), load4(x + j + 8), a2);
        a3 = _mm256_fmadd_pd(_mm256_loadu_pd(w + j + 12), load4(x + j + 12), a3);
    }
    _mm256_storeu_pd(acc, a0);
    _mm256_storeu_pd(acc + 4, a1);
    _mm256_storeu_pd(acc + 8, a2);
    _mm256_storeu_pd(acc + 12, a3);
#else
    for (; j + 16 <= d; j += 16)
        for (int l = 0; l < 16; ++l) acc[l] = madd(w[j + l], double(x[j + l]), acc[l]);
#endif
    if (ahead)
        for (int64_t at = j * int64_t(sizeof(T)); at < d * int64_t(sizeof(T)); at += 64)
            FASTOPT_PREFETCH(ahead + at, 0, 3);
    double tail = 0.0;
    for (; j < d; ++j) tail = madd(w[j], double(x[j]), tail);
    for (int l = 0; l < 8; ++l) acc[l] += acc[l + 8];
    return (((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))) +
           tail;
}

// g += a * x
template <class T>
inline void axpy(double a, const T* __restrict x, double* __restrict g, int64_t d) noexcept {
    int64_t j = 0;
#if defined(__AVX2__) && defined(__FMA__)
    const __m256d av = _mm256_set1_pd(a);
    for (; j + 4 <= d; j += 4)
        _mm256_storeu_pd(g + j, _mm256_fmadd_pd(av, load4(x + j), _mm256_loadu_pd(g + j)));
#endif
    for (; j < d; ++j) g[j] = madd(a, double(x[j]), g[j]);
}

// g += a[0] * x[0] + ... + a[B-1] * x[B-1], added row after row for each element: the same
// operations in the same order as B calls of axpy, with one load and store of g.
template <int B, class T>
inline void axpy_rows(const double* a, const T* const* x, double* __restrict g,
                      int64_t d) noexcept {
    int64_t j = 0;
#if defined(__AVX2__) && defined(__FMA__)
    __m256d av[B];
    for (int i = 0; i < B; ++i) av[i] = _mm256_set1_pd(a[i]);
    for (; j + 4 <= d; j += 4) {
        __m256d sum = _mm256_loadu_pd(g + j);
        for (int i = 0; i < B; ++i) sum = _mm256_fmadd_pd(av[i], load4(x[i] + j), sum);
        _mm256_storeu_pd(g + j, sum);
    }
#endif
    for (; j < d; ++j) {
        double sum = g[j];
        for (int i = 0; i < B; ++i) sum = madd(a[i], double(x[i][j]), sum);
        g[j] = sum;
    }
}

}  // namespace FASTOPT_ISA
}  // namespace fastopt
