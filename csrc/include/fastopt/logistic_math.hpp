// The logistic loss and its residual: exp and log1p written out, one row or four at a time.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#ifndef FASTOPT_ISA
#define FASTOPT_ISA baseline
#endif

namespace fastopt {
namespace FASTOPT_ISA {

// The logistic loss and sigmoid need exp(x) for x <= 0 and log1p(e) for e in [0, 1]. Written
// here with plain multiplies and adds (no fused multiply-add, no library call) in one order, so
// that the scalar and four-lane versions, every instruction-set build and the Numba backend
// (fastopt/_numba_backend.py) give the same bits, and four rows of a block share one vector.
// Both are within an ulp of NumPy's (tests/test_logistic_math.py).
namespace logistic_math {
constexpr double inv_ln2 = 1.4426950408889634;
constexpr double ln2_hi = 6.93147180369123816490e-01;  // ln 2 to 32 bits: k * ln2_hi is exact
constexpr double ln2_lo = 1.90821492927058770002e-10;
constexpr double shifter = 6755399441055744.0;  // 1.5 * 2^52: x + shifter rounds x to an integer
constexpr double lowest = -750.0;               // exp(x) is 0 below about -745.13
constexpr double sqrt2 = 1.4142135623730951;
constexpr double two_pow_minus_1000 = 9.332636185032189e-302;
constexpr uint64_t shifter_bits = 0x4338000000000000ull;
// Taylor coefficients of exp(r) = sum r^i / i!, i = 0 .. 13 (|r| <= ln2 / 2), and R(z) = sum
// 2 z^i / (2i + 1), i = 1 .. 10, of log(1+f) = f - s (f - R), s = f / (2 + f) (|s| <= 0.1716,
// z = s^2). Both polynomials are evaluated by Estrin's scheme: a short dependency chain, as the
// row-at-a-time loop has little else to overlap with it.
constexpr double exp_c[14] = {1.0,
                               1.0,
                               1.0 / 2.0,
                               1.0 / 6.0,
                               1.0 / 24.0,
                               1.0 / 120.0,
                               1.0 / 720.0,
                               1.0 / 5040.0,
                               1.0 / 40320.0,
                               1.0 / 362880.0,
                               1.0 / 3628800.0,
                               1.0 / 39916800.0,
                               1.0 / 479001600.0,
                               1.0 / 6227020800.0};
constexpr double log_c[10] = {2.0 / 3.0,  2.0 / 5.0,  2.0 / 7.0,  2.0 / 9.0,  2.0 / 11.0,
                              2.0 / 13.0, 2.0 / 15.0, 2.0 / 17.0, 2.0 / 19.0, 2.0 / 21.0};
}  // namespace logistic_math

// exp(x) for x <= 0 (NaN stays NaN): x = k ln2 + r, exp(r) by its Taylor polynomial, times 2^k
// as 2^(k + 1000) (exact) and 2^-1000 (one rounding, where the result is subnormal).
inline double exp_nonpositive(double x) noexcept {
    using namespace logistic_math;
    x = x < lowest ? lowest : x;
    const double t = x * inv_ln2 + shifter;
    const double k = t - shifter;
    const double r = (x - k * ln2_hi) - k * ln2_lo;
    const double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
    const double s0 = r + (exp_c[2] + exp_c[3] * r) * r2;
    const double s1 = (exp_c[4] + exp_c[5] * r) + (exp_c[6] + exp_c[7] * r) * r2;
    const double s2 = (exp_c[8] + exp_c[9] * r) + (exp_c[10] + exp_c[11] * r) * r2;
    const double s3 = exp_c[12] + exp_c[13] * r;
    const double p = exp_c[0] + ((s0 + s1 * r4) + (s2 + s3 * r4) * r8);  // 1 added last
    uint64_t k_bits;
    std::memcpy(&k_bits, &t, sizeof t);
    const uint64_t scale_bits = (k_bits - shifter_bits + 2023u) << 52;
    double scale;
    std::memcpy(&scale, &scale_bits, sizeof scale);
    return p * scale * two_pow_minus_1000;
}

// log1p(e) for e in [0, 1] (NaN stays NaN): log(u) for u = 1 + e, as k ln2 + log(m) with
// m = u or u / 2 in [sqrt(1/2), sqrt(2)], plus (e - (u - 1)) / u for the rounding of u.
inline double log1p_unit(double e) noexcept {
    using namespace logistic_math;
    const double u = 1.0 + e;
    const bool big = u > sqrt2;
    const double m = big ? u * 0.5 : u;
    const double k = big ? 1.0 : 0.0;
    const double f = m - 1.0;
    const double s = f / (2.0 + f);
    const double z = s * s;
    const double z2 = z * z, z4 = z2 * z2, z8 = z4 * z4;
    const double b0 = (log_c[0] + log_c[1] * z) + (log_c[2] + log_c[3] * z) * z2;
    const double b1 = (log_c[4] + log_c[5] * z) + (log_c[6] + log_c[7] * z) * z2;
    const double b2 = log_c[8] + log_c[9] * z;
    const double R = ((b0 + b1 * z4) + b2 * z8) * z;
    const double hfsq = 0.5 * f * f;
    const double rounding = (e - (u - 1.0)) / u;
    return k * ln2_hi + ((f - (hfsq - s * (hfsq + R))) + (k * ln2_lo + rounding));
}

// Loss of one row of logistic regression at score z with label y; the residual
// sigmoid(z) - y goes to `residual`.
inline double logistic_loss(double z, double y, double& residual) noexcept {
    const double e = exp_nonpositive(-std::fabs(z));
    const double loss = std::max(z, 0.0) + log1p_unit(e) - y * z;
    const double sigmoid = z >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
    residual = sigmoid - y;
    return loss;
}

// logistic_loss of four rows: scores z[i] in, residuals out in z[i], losses in loss[i]. The AVX2
// build runs the four side by side, with the same operations in the same order as the scalar
// code, so the results are the same to the bit.
inline void logistic_loss4(double* z, const double* y, double* loss) noexcept {
#if defined(__AVX2__) && defined(__FMA__)
    using namespace logistic_math;
    auto c = [](double v) { return _mm256_set1_pd(v); };
    auto add = [](__m256d a, __m256d b) { return _mm256_add_pd(a, b); };
    auto sub = [](__m256d a, __m256d b) { return _mm256_sub_pd(a, b); };
    auto mul = [](__m256d a, __m256d b) { return _mm256_mul_pd(a, b); };
    auto div = [](__m256d a, __m256d b) { return _mm256_div_pd(a, b); };
    auto pick = [](__m256d no, __m256d yes, __m256d mask) {
        return _mm256_blendv_pd(no, yes, mask);
    };
    auto pair = [&](const double* coef, __m256d v) { return add(c(coef[0]), mul(c(coef[1]), v)); };
    const __m256d zv = _mm256_loadu_pd(z), yv = _mm256_loadu_pd(y), one = c(1.0), zero = c(0.0);
    // e = exp_nonpositive(-|z|)
    __m256d x = _mm256_or_pd(zv, c(-0.0));
    x = pick(x, c(lowest), _mm256_cmp_pd(x, c(lowest), _CMP_LT_OQ));
    const __m256d t = add(mul(x, c(inv_ln2)), c(shifter));
    const __m256d k = sub(t, c(shifter));
    const __m256d r = sub(sub(x, mul(k, c(ln2_hi))), mul(k, c(ln2_lo)));
    const __m256d r2 = mul(r, r), r4 = mul(r2, r2), r8 = mul(r4, r4);
    const __m256d s0 = add(r, mul(pair(exp_c + 2, r), r2));
    const __m256d s1 = add(pair(exp_c + 4, r), mul(pair(exp_c + 6, r), r2));
    const __m256d s2 = add(pair(exp_c + 8, r), mul(pair(exp_c + 10, r), r2));
    const __m256d s3 = pair(exp_c + 12, r);
    const __m256d p = add(c(exp_c[0]), add(add(s0, mul(s1, r4)), mul(add(s2, mul(s3, r4)), r8)));
    const __m256i scale_bits = _mm256_slli_epi64(
        _mm256_add_epi64(_mm256_sub_epi64(_mm256_castpd_si256(t),
                                          _mm256_set1_epi64x(int64_t(shifter_bits))),
                         _mm256_set1_epi64x(2023)),
        52);
    const __m256d e = mul(mul(p, _mm256_castsi256_pd(scale_bits)), c(two_pow_minus_1000));
    // log1p_unit(e)
    const __m256d u = add(one, e);
    const __m256d big = _mm256_cmp_pd(u, c(sqrt2), _CMP_GT_OQ);
    const __m256d m = pick(u, mul(u, c(0.5)), big);
    const __m256d kk = _mm256_and_pd(big, one);
    const __m256d f = sub(m, one);
    const __m256d s = div(f, add(c(2.0), f));
    const __m256d zz = mul(s, s);
    const __m256d z2 = mul(zz, zz), z4 = mul(z2, z2), z8 = mul(z4, z4);
    const __m256d b0 = add(pair(log_c, zz), mul(pair(log_c + 2, zz), z2));
    const __m256d b1 = add(pair(log_c + 4, zz), mul(pair(log_c + 6, zz), z2));
    const __m256d b2 = pair(log_c + 8, zz);
    const __m256d R = mul(add(add(b0, mul(b1, z4)), mul(b2, z8)), zz);
    const __m256d hfsq = mul(mul(c(0.5), f), f);
    const __m256d rounding = div(sub(e, sub(u, one)), u);
    const __m256d log_m = sub(f, sub(hfsq, mul(s, add(hfsq, R))));
    const __m256d log1p_e = add(mul(kk, c(ln2_hi)), add(log_m, add(mul(kk, c(ln2_lo)), rounding)));
    // loss = max(z, 0) + log1p(e) - y z; residual = sigmoid(z) - y
    const __m256d top = pick(zv, zero, _mm256_cmp_pd(zv, zero, _CMP_LT_OQ));
    _mm256_storeu_pd(loss, sub(add(top, log1p_e), mul(yv, zv)));
    const __m256d sigmoid = pick(div(e, u), div(one, u), _mm256_cmp_pd(zv, zero, _CMP_GE_OQ));
    _mm256_storeu_pd(z, sub(sigmoid, yv));
#else
    for (int i = 0; i < 4; ++i) loss[i] = logistic_loss(z[i], y[i], z[i]);
#endif
}

}  // namespace FASTOPT_ISA
}  // namespace fastopt
