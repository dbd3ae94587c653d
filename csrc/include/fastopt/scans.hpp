// Passes over all of a dense X outside the epochs: the column statistics of standardize=True,
// and the memory floor of a shuffled epoch (bench/). Compiled in the baseline build only (the
// bindings call them directly); raw pointers in, no allocation.
#pragma once

#include <algorithm>
#include <cstdint>

#include "fastopt/rows.hpp"

#ifndef FASTOPT_ISA
#define FASTOPT_ISA baseline
#endif

namespace fastopt {
namespace FASTOPT_ISA {

// The floor of a shuffled epoch: the rows of X read in `order`, requested ahead at the epoch's
// two distances (prefetch_row; `near` into L1, `far` into L2, 0: not at all), and summed, with
// no other work. What an epoch spends beyond this is arithmetic and bookkeeping; this itself is
// bound by the memory system.
template <class T>
double read_rows(const T* X, int64_t d, const uint32_t* order, int64_t count, int64_t near,
                 int64_t far) noexcept {
    double acc[4] = {0.0, 0.0, 0.0, 0.0};
    for (int64_t pos = 0; pos < count; ++pos) {
        if (far > 0 && pos + far < count) prefetch_row(X, order[pos + far], d, true);
        if (near > 0 && pos + near < count) prefetch_row(X, order[pos + near], d);
        const T* x = X + int64_t(order[pos]) * d;
        int64_t j = 0;
        for (; j + 4 <= d; j += 4)
            for (int l = 0; l < 4; ++l) acc[l] += double(x[j + l]);
        for (; j < d; ++j) acc[0] += double(x[j]);
    }
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

// sums[j] += w_r * x_rj for `count` rows from `first`, row after row; with `squares`, the
// squared deviations w_r * (x_rj - center_j)^2 instead.
template <int count, bool squares, class T>
void add_rows(const T* X, int64_t d, const double* weights, int64_t first,
              const double* __restrict center, double* __restrict sums) noexcept {
    const T* x[count];
    double w[count];
    for (int k = 0; k < count; ++k) {
        x[k] = X + (first + k) * d;
        w[k] = weights ? weights[first + k] : 1.0;
    }
    for (int64_t j = 0; j < d; ++j) {
        double acc = sums[j];
        for (int k = 0; k < count; ++k) {
            if constexpr (squares) {
                const double dev = double(x[k][j]) - center[j];
                acc += w[k] * (dev * dev);
            } else {
                acc += w[k] * double(x[k][j]);
            }
        }
        sums[j] = acc;
    }
}

// Weighted per-column mean and sum of squared deviations (standardize=True) of the n x d X, one
// pass: each block of rows is summed twice while it is in cache (its mean, then its squares
// about that mean), and the blocks merge by Chan et al.'s pairwise update, which is as accurate
// as two passes over X. NumPy's two passes in row blocks took ~5x an epoch (W1); this reads X
// once. A NaN or inf anywhere makes its column's results non-finite, also in a row of weight
// zero (0 * inf is NaN): finite results prove X finite. `mean` and `m2` (d each) come in zeroed;
// `scratch` holds 2 d doubles.
template <class T>
void column_moments(const T* X, int64_t n, int64_t d, const double* weights, double* mean,
                    double* m2, double* scratch) noexcept {
    const int64_t block = std::max<int64_t>(1, (int64_t(1) << 15) / std::max<int64_t>(d, 1));
    double* block_mean = scratch;
    double* block_m2 = block_mean + d;
    double total = 0.0;
    for (int64_t lo = 0; lo < n; lo += block) {
        const int64_t hi = std::min(n, lo + block);
        std::fill(block_mean, block_mean + 2 * d, 0.0);
        double block_total = 0.0;
        for (int64_t r = lo; r < hi; ++r) block_total += weights ? weights[r] : 1.0;
        // Four rows per sweep over the columns: the sums run row after row as one at a time
        // would, with a quarter of the loads and stores of the column sums.
        int64_t r = lo;
        for (; r + 4 <= hi; r += 4) add_rows<4, false>(X, d, weights, r, nullptr, block_mean);
        for (; r < hi; ++r) add_rows<1, false>(X, d, weights, r, nullptr, block_mean);
        if (block_total == 0.0) {  // rows removed by weight zero: only their NaN/inf count
            for (int64_t j = 0; j < d; ++j) m2[j] += block_mean[j];
            continue;
        }
        for (int64_t j = 0; j < d; ++j) block_mean[j] /= block_total;
        for (r = lo; r + 4 <= hi; r += 4) add_rows<4, true>(X, d, weights, r, block_mean, block_m2);
        for (; r < hi; ++r) add_rows<1, true>(X, d, weights, r, block_mean, block_m2);
        const double merged = total + block_total;
        const double share = block_total / merged, cross = total * share;
        for (int64_t j = 0; j < d; ++j) {
            const double delta = block_mean[j] - mean[j];
            mean[j] += delta * share;
            m2[j] += block_m2[j] + delta * delta * cross;
        }
        total = merged;
    }
}

}  // namespace FASTOPT_ISA
}  // namespace fastopt
