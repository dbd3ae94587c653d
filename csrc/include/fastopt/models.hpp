// Losses and minibatch gradients of linear, logistic and softmax regression.
//
// The objective, parameter layout and formulas are specified in fastopt/reference/models.py.
// Everything is accumulated in double whatever T is; dot products use eight fixed lanes summed
// in a fixed order, so results do not depend on the instruction set the kernels were built for.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include "fastopt/config.hpp"
#include "fastopt/portable.hpp"
#include "fastopt/shuffle.hpp"

#ifndef FASTOPT_ISA
#define FASTOPT_ISA baseline
#endif

namespace fastopt {
namespace FASTOPT_ISA {

inline bool tick(StopCheck& stop, int64_t elements) noexcept {
    stop.since_poll += elements;
    if (stop.poll != nullptr && stop.since_poll >= stop.budget) {
        stop.since_poll = 0;
        stop.stopped = stop.stopped || stop.poll(stop.context);
    }
    return stop.stopped;
}

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

template <class T>
inline double dot(const double* __restrict w, const T* __restrict x, int64_t d) noexcept {
    // 16 lanes: four independent chains hide the latency of the multiply-adds.
    double acc[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    int64_t j = 0;
#if defined(__AVX2__) && defined(__FMA__)
    __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
    for (; j + 16 <= d; j += 16) {
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

// x~ = (x - mean) * inv_std into `out`, or null when not standardising (use x itself).
template <class T>
inline const double* standardize_row(const Dataset<T>& data, const T* x, int64_t d,
                                     double* __restrict out) noexcept {
    if (data.mean == nullptr) return nullptr;
    for (int64_t j = 0; j < d; ++j) out[j] = (double(x[j]) - data.mean[j]) * data.inv_std[j];
    return out;
}

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

// Loss of one row and, in place of its scores, the residual dl/df. Returns the loss.
inline double loss_and_residual(Model model, double* __restrict f, int64_t k, double y) noexcept {
    switch (model) {
        case Model::linear: {
            const double r = f[0] - y;
            f[0] = r;
            return 0.5 * r * r;
        }
        case Model::logistic:
            return logistic_loss(f[0], y, f[0]);
        case Model::softmax: {
            const int64_t label = static_cast<int64_t>(y);
            double top = f[0];
            for (int64_t c = 1; c < k; ++c) top = std::max(top, f[c]);
            const double f_label = f[label];
            double total = 0.0;
            for (int64_t c = 0; c < k; ++c) {
                f[c] = std::exp(f[c] - top);
                total += f[c];
            }
            const double lse = top + std::log(total);
            for (int64_t c = 0; c < k; ++c) f[c] = f[c] / total;
            f[label] -= 1.0;
            return lse - f_label;
        }
    }
    return 0.0;
}

// alpha * P(W) for the coefficient block `w` (length k*d).
inline double penalty_value(const ModelSpec& s, const double* w) noexcept {
    if (s.penalty == Penalty::none || s.alpha == 0.0) return 0.0;
    const int64_t size = s.n_outputs * s.n_features;
    const double l1 = l1_share(s);
    double abs_sum = 0.0, sq_sum = 0.0;
    for (int64_t j = 0; j < size; ++j) {
        abs_sum += std::fabs(w[j]);
        sq_sum += w[j] * w[j];
    }
    return s.alpha * (l1 * abs_sum + 0.5 * (1 - l1) * sq_sum);
}

inline void add_penalty_gradient(const ModelSpec& s, const double* __restrict w,
                                 double* __restrict grad) noexcept {
    if (s.penalty == Penalty::none || s.alpha == 0.0) return;
    const int64_t size = s.n_outputs * s.n_features;
    const double l1 = l1_share(s), l2 = 1 - l1, alpha = s.alpha;
    for (int64_t j = 0; j < size; ++j) {
        const double sign = w[j] > 0 ? 1.0 : (w[j] < 0 ? -1.0 : 0.0);
        grad[j] = grad[j] + alpha * (l1 * sign + l2 * w[j]);
    }
}

// Bring row r of X towards the core ahead of use: in a shuffled epoch every row is a random
// fetch, and the row indices are known in advance.
// Two distances: a few rows ahead into L1, and (`into_l2`) tens of rows ahead into L2 only.
// L2 keeps more misses in flight than L1 does, so the far requests raise the number of rows
// on their way from memory, and the near ones then find them in L2 (W1: an epoch ~1.3x faster
// than with the near requests alone; bench/README.md).
template <class T>
inline void prefetch_row(const T* X, int64_t r, int64_t d, bool into_l2 = false) noexcept {
    const char* p = reinterpret_cast<const char*>(X + r * d);
    const int64_t bytes = d * int64_t(sizeof(T));
    if (into_l2)
        for (int64_t offset = 0; offset < bytes; offset += 64) FASTOPT_PREFETCH(p + offset, 0, 2);
    else
        for (int64_t offset = 0; offset < bytes; offset += 64) FASTOPT_PREFETCH(p + offset, 0, 3);
}

// Rows of an epoch in visiting order: the shuffled order, or 0, 1, ..., n - 1.
class RowStream {
   public:
    // `order` null: rows in order.
    RowStream(const uint32_t* order, int64_t n) noexcept : order_(order), n_(n) {}

    int64_t row(int64_t pos) const noexcept { return order_ ? int64_t(order_[pos]) : pos; }
    int64_t size() const noexcept { return n_; }
    bool shuffled() const noexcept { return order_ != nullptr; }

   private:
    const uint32_t* order_;
    int64_t n_;
};

// Sparse rows. With standardisation x~_j = (x_j - mean_j) * inv_std_j is dense, so the scores
// and the gradient are split into a sparse part and a per-minibatch correction:
//   score_c = sum_{j in row} w_cj * x_j * inv_std_j  -  center_c,
//             center_c = sum_j w_cj * mean_j * inv_std_j              (once per update)
//   grad_cj = sum_i r_ic * x_ij * inv_std_j  -  (mean_j * inv_std_j) * sum_i r_ic
// Sums run over the stored entries in order, one multiply-add each.
template <class T>
inline bool is_sparse(const Dataset<T>& data) noexcept {
    return data.csr.values != nullptr;
}

template <class T>
inline void sparse_row_range(const Dataset<T>& data, int64_t r, int64_t& begin,
                             int64_t& end) noexcept {
    if (data.csr.indptr64) {
        begin = data.csr.indptr64[r];
        end = data.csr.indptr64[r + 1];
    } else {
        begin = data.csr.indptr32[r];
        end = data.csr.indptr32[r + 1];
    }
}

template <class T>
inline int64_t sparse_column(const Dataset<T>& data, int64_t e) noexcept {
    return data.csr.indices64 ? data.csr.indices64[e] : int64_t(data.csr.indices32[e]);
}

// center_c for the parameters w, into `center` (standardised sparse X only).
template <class T>
inline void sparse_centering(const ModelSpec& s, const Dataset<T>& data, const double* w,
                             double* center) noexcept {
    if (!is_sparse(data) || data.mean == nullptr) return;
    const int64_t d = s.n_features;
    for (int64_t c = 0; c < s.n_outputs; ++c) {
        double sum = 0.0;
        for (int64_t j = 0; j < d; ++j) sum = madd(w[c * d + j], data.mean[j] * data.inv_std[j], sum);
        center[c] = sum;
    }
}

// One sparse row into the scores, loss, residual and gradient. The coefficients of output c
// are w[c * width + index], the intercepts w[k * width + c] (grad alike), where index is the
// entry's column, or `slots[entry]` when given: the lazy epoch's compact arrays
// (epoch.hpp run_epoch_lazy; width is then the number of active columns).
template <class T>
inline double accumulate_sparse_row(const ModelSpec& s, const Dataset<T>& data, int64_t r,
                                    const double* w, double* __restrict grad,
                                    double* __restrict f, const double* center,
                                    double* residual_sum, const int64_t* slots = nullptr,
                                    int64_t width = -1) noexcept {
    const int64_t k = s.n_outputs;
    if (width < 0) width = s.n_features;
    const bool standardize = data.mean != nullptr;
    int64_t begin, end;
    sparse_row_range(data, r, begin, end);
    const T* values = data.csr.values;
    // Entry e's place in w and grad, and its (scaled) value.
    auto entry = [&](int64_t e, int64_t& index) {
        const int64_t j = sparse_column(data, e);
        index = slots ? slots[e - begin] : j;
        return standardize ? double(values[e]) * data.inv_std[j] : double(values[e]);
    };
    for (int64_t c = 0; c < k; ++c) {
        const double* wc = w + c * width;
        double score = 0.0;
        for (int64_t e = begin; e < end; ++e) {
            int64_t index;
            const double x = entry(e, index);
            score = madd(wc[index], x, score);
        }
        if (standardize) score = score - center[c];
        f[c] = s.fit_intercept ? score + w[k * width + c] : score;
    }
    const double loss = loss_and_residual(s.model, f, k, data.y[r]);
    const double weight = data.sample_weight ? data.sample_weight[r] : 1.0;
    for (int64_t c = 0; c < k; ++c) {
        const double rc = f[c] * weight;
        double* __restrict g = grad + c * width;
        for (int64_t e = begin; e < end; ++e) {
            int64_t index;
            const double x = entry(e, index);
            g[index] = madd(rc, x, g[index]);
        }
        if (s.fit_intercept) grad[k * width + c] += rc;
        if (standardize) residual_sum[c] += rc;
    }
    return weight * loss;
}

// One dense row's contribution: its scores, loss and residual, then its gradient term added to
// `grad` while the row is still in L1. Returns s_r * l_r.
template <class T>
inline double accumulate_row(const ModelSpec& s, const Dataset<T>& data, int64_t r,
                             const double* w, double* __restrict grad, double* __restrict f,
                             double* row_scratch) noexcept {
    const int64_t d = s.n_features, k = s.n_outputs;
    const double* b = w + k * d;
    const T* x = data.X + r * d;
    const double* xs = standardize_row(data, x, d, row_scratch);
    for (int64_t c = 0; c < k; ++c) {
        const double score = xs ? dot<double>(w + c * d, xs, d) : dot<T>(w + c * d, x, d);
        f[c] = s.fit_intercept ? score + b[c] : score;
    }
    const double loss = loss_and_residual(s.model, f, k, data.y[r]);
    const double weight = data.sample_weight ? data.sample_weight[r] : 1.0;
    for (int64_t c = 0; c < k; ++c) {
        const double rc = f[c] * weight;
        double* __restrict g = grad + c * d;
        if (xs) axpy<double>(rc, xs, g, d);
        else axpy<T>(rc, x, g, d);
        if (s.fit_intercept) grad[k * d + c] += rc;
    }
    return weight * loss;
}

// The entries of sparse row r (a separate function from the dense case: with both paths in
// one function the compiler scheduled the dense prefetches far worse, an epoch 2x slower).
template <class T>
inline void prefetch_sparse_sample(const Dataset<T>& data, int64_t r) noexcept {
    int64_t begin, end;
    sparse_row_range(data, r, begin, end);
    FASTOPT_PREFETCH(data.csr.values + begin, 0, 3);
    if (data.csr.indices64) FASTOPT_PREFETCH(data.csr.indices64 + begin, 0, 3);
    else FASTOPT_PREFETCH(data.csr.indices32 + begin, 0, 3);
    FASTOPT_PREFETCH(data.y + r, 0, 3);
    if (data.sample_weight) FASTOPT_PREFETCH(data.sample_weight + r, 0, 3);
}

template <class T>
inline void prefetch_sample(const Dataset<T>& data, int64_t r, int64_t d) noexcept {
    prefetch_row(data.X, r, d);
    FASTOPT_PREFETCH(data.y + r, 0, 3);
    if (data.sample_weight) FASTOPT_PREFETCH(data.sample_weight + r, 0, 3);
}

// The gradient mean and penalty of a minibatch of m rows whose sum is in grad (standardised
// sparse X: with the centring correction from the residual sums first). Returns whether every
// coordinate of the result is finite.
template <class T>
inline bool finish_gradient(const ModelSpec& s, const Dataset<T>& data, const double* w,
                            double* grad, const double* residual_sum, int64_t m) noexcept {
    const int64_t p = n_params(s), d = s.n_features;
    if (is_sparse(data) && data.mean != nullptr)
        for (int64_t c = 0; c < s.n_outputs; ++c)
            for (int64_t j = 0; j < d; ++j)
                grad[c * d + j] = grad[c * d + j] - data.mean[j] * data.inv_std[j] * residual_sum[c];
    if (s.penalty != Penalty::none && s.alpha != 0.0) {
        for (int64_t j = 0; j < p; ++j) grad[j] = grad[j] / double(m);
        add_penalty_gradient(s, w, grad);
        return all_finite(grad, p);
    }
    uint64_t bad = 0;  // the check of all_finite, in the same pass as the division
    for (int64_t j = 0; j < p; ++j) {
        grad[j] = grad[j] / double(m);
        bad |= uint64_t(nonfinite(grad[j]));
    }
    return bad == 0;
}

// sum_rows for dense, unstandardised X and one output (linear and logistic regression), the
// common case, written lean: the same operations in the same order as accumulate_row, with the
// loop invariants in registers, the intercept's gradient summed on the side and every row
// requested twice ahead (into L2 `far` positions ahead, into L1 `near` ahead; -1: not at all).
// Fewer instructions per row let the core keep more rows on their way from memory: W1 ran
// ~1.15x faster than through accumulate_row (C++ driver, interleaved runs).
//
// `standardized`: each row is standardised into `row_scratch` (standardized_rows(d) rows of d)
// and the sums run on that copy, as accumulate_row's do, so the bits are the same; the copies
// of a chunk's rows wait there for their updates.
template <class T, bool standardized>
double sum_dense_rows_one_output(const ModelSpec& s, const Dataset<T>& data,
                                 const RowStream& rows, int64_t lo, int64_t hi, int64_t next_lo,
                                 int64_t next_hi, int64_t near, int64_t far, const double* w,
                                 double* __restrict grad, double* row_scratch,
                                 StopCheck* stop) noexcept {
    using Row = std::conditional_t<standardized, double, T>;  // what the sums read
    constexpr int64_t poll_every = 512;
    const int64_t d = s.n_features;
    const T* X = data.X;
    const double* y = data.y;
    const double* weights = data.sample_weight;
    const bool logistic = s.model == Model::logistic, intercept = s.fit_intercept;
    const double b = intercept ? w[d] : 0.0;
    auto position = [&](int64_t ahead) {  // -1: past the rows this loop may request
        const int64_t at = ahead < hi ? ahead : next_lo + (ahead - hi);
        return ahead < hi || at < next_hi ? at : int64_t(-1);
    };
    // With data.row_chunk > 0 the gradient updates of that many rows wait until their dot
    // products are done, and then go four rows at a time (axpy_rows: the same sums in the same
    // order, so the same bits): the dot products of upcoming rows no longer queue behind the
    // updates, and the rows are still in L1 or L2 when the updates read them again. The
    // logistic model defers its exp and log too and takes them four rows at a time
    // (logistic_loss4: one vector in the AVX2 build); the linear residual is cheaper done at
    // once (deferring it made W1 ~1.1x slower). W1 and W2 ~1.1x faster with the updates
    // deferred, W2 another 1.25-1.45x with the losses deferred (bench/README.md).
    constexpr int64_t max_chunk = 64;
    const int64_t chunk =
        std::min(data.row_chunk, standardized ? standardized_rows(d) : max_chunk);
    const bool defer_losses = chunk > 0 && logistic;
    // pending_f: f = score + intercept until flush() turns it into residual * weight (the
    // logistic model with deferred losses); otherwise already residual * weight.
    double pending_f[max_chunk], pending_y[max_chunk], pending_loss[max_chunk];
    const double* pending_weight[max_chunk];
    const Row* pending_x[max_chunk];
    int64_t pending = 0;
    double loss_sum = 0.0, intercept_grad = 0.0;
    auto flush = [&] {
        int64_t i = 0;
        if (defer_losses) {
            for (; i + 4 <= pending; i += 4)
                logistic_loss4(pending_f + i, pending_y + i, pending_loss + i);
            for (; i < pending; ++i)
                pending_loss[i] = loss_and_residual(Model::logistic, pending_f + i, 1,
                                                    pending_y[i]);
            for (i = 0; i < pending; ++i) {  // row after row: the order of the sums
                const double weight = pending_weight[i] ? *pending_weight[i] : 1.0;
                const double rc = pending_f[i] * weight;
                pending_f[i] = rc;
                intercept_grad += rc;
                loss_sum += weight * pending_loss[i];
            }
        }
        for (i = 0; i + 4 <= pending; i += 4) axpy_rows<4>(pending_f + i, pending_x + i, grad, d);
        for (; i < pending; ++i) axpy<Row>(pending_f[i], pending_x[i], grad, d);
        pending = 0;
    };
    for (int64_t pos = lo; pos < hi; ++pos) {
        if (far >= 0) {
            const int64_t at = position(pos + far);
            if (at >= 0) prefetch_row(X, rows.row(at), d, true);
        }
        if (near >= 0) {
            const int64_t at = position(pos + near);
            if (at >= 0) {
                const int64_t r = rows.row(at);
                prefetch_row(X, r, d);
                FASTOPT_PREFETCH(y + r, 0, 3);
                if (weights) FASTOPT_PREFETCH(weights + r, 0, 3);
            }
        }
        const int64_t r = rows.row(pos);
        const Row* x;
        if constexpr (standardized)
            x = standardize_row(data, X + r * d, d, row_scratch + (chunk > 0 ? pending : 0) * d);
        else
            x = X + r * d;
        const double score = dot<Row>(w, x, d);
        const double f = intercept ? score + b : score;
        if (defer_losses) {
            pending_f[pending] = f;
            pending_y[pending] = y[r];
            pending_weight[pending] = weights ? weights + r : nullptr;
            pending_x[pending++] = x;
            if (pending == chunk) flush();
        } else {
            double rc = f;
            const double loss = loss_and_residual(logistic ? Model::logistic : Model::linear,
                                                  &rc, 1, y[r]);
            const double weight = weights ? weights[r] : 1.0;
            rc = rc * weight;
            if (chunk > 0) {
                pending_f[pending] = rc;
                pending_x[pending++] = x;
                if (pending == chunk) flush();
            } else {
                axpy<Row>(rc, x, grad, d);
            }
            intercept_grad += rc;
            loss_sum += weight * loss;
        }
        if (stop && (pos - lo + 1) % poll_every == 0 && tick(*stop, poll_every * d * 3))
            return loss_sum;
    }
    flush();
    // grad[d] came in as zero, so this is the same sum as adding rc row by row.
    if (intercept) grad[d] += intercept_grad;
    return loss_sum;
}

// The same, four rows at a time, for X that fits in cache (data.row_blocks), where the loop
// waits on arithmetic: four independent dot products and losses side by side keep the core
// busy where one row's chain (dot, exp, division) would leave it waiting, and the gradient is
// read and written once per four rows (axpy_rows); the sums still run row after row, so the
// result is the same to the bit. W3 ~1.2x faster; on X read from memory it is slower (W1), as
// it keeps fewer rows in flight.
template <class T>
double sum_dense_row_blocks_one_output(const ModelSpec& s, const Dataset<T>& data,
                                       const RowStream& rows, int64_t lo, int64_t hi,
                                       int64_t next_lo, int64_t next_hi, int64_t near,
                                       int64_t far, const double* w, double* __restrict grad,
                                       StopCheck* stop) noexcept {
    constexpr int64_t poll_every = 512, block = 4;  // four rows: logistic_loss4
    static_assert(poll_every % block == 0);
    const int64_t d = s.n_features;
    const T* X = data.X;
    const double* y = data.y;
    const double* weights = data.sample_weight;
    const Model model = s.model == Model::logistic ? Model::logistic : Model::linear;
    const bool intercept = s.fit_intercept;
    const double b = intercept ? w[d] : 0.0;
    auto request = [&](int64_t pos) {  // as in sum_dense_rows_one_output
        auto position = [&](int64_t ahead) {
            const int64_t at = ahead < hi ? ahead : next_lo + (ahead - hi);
            return ahead < hi || at < next_hi ? at : int64_t(-1);
        };
        if (far >= 0) {
            const int64_t at = position(pos + far);
            if (at >= 0) prefetch_row(X, rows.row(at), d, true);
        }
        if (near >= 0) {
            const int64_t at = position(pos + near);
            if (at >= 0) prefetch_sample(data, rows.row(at), d);
        }
    };
    double loss_sum = 0.0, intercept_grad = 0.0;
    int64_t pos = lo;
    for (; pos + block <= hi; pos += block) {
        const T* x[block];
        double f[block], loss[block], weight[block], rc[block];
        int64_t r[block];
        for (int i = 0; i < block; ++i) {
            request(pos + i);
            r[i] = rows.row(pos + i);
            x[i] = X + r[i] * d;
        }
        for (int i = 0; i < block; ++i) {
            const double score = dot<T>(w, x[i], d);
            f[i] = intercept ? score + b : score;
        }
        if (model == Model::logistic) {
            double labels[block];
            for (int i = 0; i < block; ++i) labels[i] = y[r[i]];
            logistic_loss4(f, labels, loss);
        } else {
            for (int i = 0; i < block; ++i) loss[i] = loss_and_residual(model, &f[i], 1, y[r[i]]);
        }
        for (int i = 0; i < block; ++i) {
            weight[i] = weights ? weights[r[i]] : 1.0;
            rc[i] = f[i] * weight[i];
        }
        axpy_rows<block>(rc, x, grad, d);
        for (int i = 0; i < block; ++i) {
            intercept_grad += rc[i];
            loss_sum += weight[i] * loss[i];
        }
        if (stop && (pos - lo + block) % poll_every == 0 && tick(*stop, poll_every * d * 3))
            return loss_sum;
    }
    for (; pos < hi; ++pos) {  // the last rows, one by one, into the same sums
        request(pos);
        const int64_t r = rows.row(pos);
        const T* x = X + r * d;
        const double score = dot<T>(w, x, d);
        double f = intercept ? score + b : score;
        const double loss = loss_and_residual(model, &f, 1, y[r]);
        const double weight = weights ? weights[r] : 1.0;
        const double rc = f * weight;
        axpy<T>(rc, x, grad, d);
        intercept_grad += rc;
        loss_sum += weight * loss;
    }
    if (intercept) grad[d] += intercept_grad;
    return loss_sum;
}

// The rows at positions [lo, hi) of `rows` summed into grad, f, residual_sum (no mean, no
// penalty): the loop every epoch spends its time in. Shuffled epochs request the rows that
// come `lookahead` (into L1) and `far` (into L2) positions later; past hi those are the
// positions from next_lo on, up to next_hi. `stop` null: never polls. Returns the sum of
// s_i * l_i.
template <class T, bool sparse>
double sum_rows(const ModelSpec& s, const Dataset<T>& data, const RowStream& rows, int64_t lo,
                int64_t hi, int64_t next_lo, int64_t next_hi, const double* w,
                double* __restrict grad, double* f, double* row_scratch, const double* center,
                double* residual_sum, StopCheck* stop) noexcept {
    constexpr int64_t poll_every = 512;
    const int64_t d = s.n_features, k = s.n_outputs;
    // Dense rows are requested ahead in order too: the hardware prefetcher alone kept epochs
    // in order slower than shuffled blocks of rows with these requests (bench/README.md).
    const int64_t lookahead = rows.shuffled() || !sparse ? data.prefetch_rows : -1;
    const int64_t far = !sparse ? data.prefetch_l2_rows : 0;
    auto ahead = [&](int64_t pos, int64_t distance) {  // -1: nothing to request there
        const int64_t at = pos + distance < hi ? pos + distance : next_lo + (pos + distance - hi);
        return pos + distance < hi || at < next_hi ? at : -1;
    };
    if constexpr (!sparse) {
        if (k == 1 && data.mean != nullptr)
            return sum_dense_rows_one_output<T, true>(s, data, rows, lo, hi, next_lo, next_hi,
                                                      lookahead, far > 0 ? far : -1, w, grad,
                                                      row_scratch, stop);
        if (k == 1)
            return data.row_blocks
                       ? sum_dense_row_blocks_one_output(s, data, rows, lo, hi, next_lo, next_hi,
                                                         lookahead, far > 0 ? far : -1, w, grad,
                                                         stop)
                       : sum_dense_rows_one_output<T, false>(s, data, rows, lo, hi, next_lo,
                                                             next_hi, lookahead,
                                                             far > 0 ? far : -1, w, grad,
                                                             row_scratch, stop);
    }
    double loss_sum = 0.0;
    for (int64_t pos = lo; pos < hi; ++pos) {
        if (far > 0) {
            const int64_t at = ahead(pos, far);
            if (at >= 0) prefetch_row(data.X, rows.row(at), d, true);
        }
        if (lookahead >= 0) {
            const int64_t at = ahead(pos, lookahead);
            if (at >= 0) {
                if constexpr (sparse) prefetch_sparse_sample(data, rows.row(at));
                else prefetch_sample(data, rows.row(at), d);
            }
        }
        if constexpr (sparse)
            loss_sum += accumulate_sparse_row(s, data, rows.row(pos), w, grad, f, center,
                                              residual_sum);
        else
            loss_sum += accumulate_row(s, data, rows.row(pos), w, grad, f, row_scratch);
        if (stop && (pos - lo + 1) % poll_every == 0 && tick(*stop, poll_every * d * (2 * k + 1)))
            return loss_sum;  // ~ multiply-adds done
    }
    return loss_sum;
}

struct BatchSums {
    double loss_sum;    // sum of s_i * l_i
    bool finite_grad;   // every coordinate of the gradient finite
};

// Sum of s_i * l_i over the rows at positions [first, first + m) of `rows`, and the gradient of
// L_B (penalty included) into ws.grad. One pass per row.
template <class T>
BatchSums batch_gradient(const ModelSpec& s, const Dataset<T>& data, const RowStream& rows,
                      int64_t first, int64_t m, Workspace<T>& ws, StopCheck& stop) noexcept {
    const int64_t k = s.n_outputs, p = n_params(s);
    double* __restrict grad = ws.grad;
    for (int64_t j = 0; j < p; ++j) grad[j] = 0.0;
    if (ws.residual_sum)
        for (int64_t c = 0; c < k; ++c) ws.residual_sum[c] = 0.0;
    sparse_centering(s, data, ws.params, ws.center);
    const int64_t end = first + m;
    const double loss_sum =
        is_sparse(data)
            ? sum_rows<T, true>(s, data, rows, first, end, end, rows.size(), ws.params, grad,
                                ws.scores, ws.row, ws.center, ws.residual_sum, &stop)
            : sum_rows<T, false>(s, data, rows, first, end, end, rows.size(), ws.params, grad,
                                 ws.scores, ws.row, ws.center, ws.residual_sum, &stop);
    if (stop.stopped) return {loss_sum, false};
    return {loss_sum, finish_gradient(s, data, ws.params, grad, ws.residual_sum, m)};
}

// One lane of a minibatch split across threads: the rows at positions [lo, hi) summed into
// `grad` (zeroed first; no mean, no penalty), prefetching on into [next_lo, next_hi), the
// lane's positions in the next minibatch. `stop` null: never polls.
template <class T>
double lane_gradient(const ModelSpec& s, const Dataset<T>& data, const RowStream& rows,
                     int64_t lo, int64_t hi, int64_t next_lo, int64_t next_hi, const double* w,
                     double* grad, double* f, double* row_scratch, const double* center,
                     double* residual_sum, StopCheck* stop) noexcept {
    const int64_t k = s.n_outputs, p = n_params(s);
    for (int64_t j = 0; j < p; ++j) grad[j] = 0.0;
    for (int64_t c = 0; c < k; ++c) residual_sum[c] = 0.0;
    return is_sparse(data) ? sum_rows<T, true>(s, data, rows, lo, hi, next_lo, next_hi, w, grad,
                                                f, row_scratch, center, residual_sum, stop)
                           : sum_rows<T, false>(s, data, rows, lo, hi, next_lo, next_hi, w,
                                                grad, f, row_scratch, center, residual_sum, stop);
}

}  // namespace FASTOPT_ISA
}  // namespace fastopt
