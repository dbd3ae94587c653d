// Minibatch gradients: the rows of a minibatch (or of one thread's share of it) summed, then
// the mean and the penalty added.
//
// Everything is accumulated in double whatever T is; dot products use fixed lanes summed in a
// fixed order, so results do not depend on the instruction set the kernels were built for.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "fastopt/config.hpp"
#include "fastopt/logistic_math.hpp"
#include "fastopt/losses.hpp"
#include "fastopt/row_loops.hpp"
#include "fastopt/rows.hpp"

#ifndef FASTOPT_ISA
#define FASTOPT_ISA baseline
#endif

namespace fastopt {
namespace FASTOPT_ISA {

// sum_rows for sparse X with one output (linear and logistic regression), `chunk` rows at a
// time: first the scores of all the chunk's rows, then their losses and residuals (logistic:
// four rows at a time, logistic_loss4), then their gradient updates row after row. Row by row
// (accumulate_sparse_row), a row's dot product waited behind the previous row's exp, log and
// updates, so little more than one row was in flight; here the chunk's dot products follow
// one another, four rows' chains interleaved. Every sum still runs in accumulate_sparse_row's
// order (each score over the row's entries in order, the gradient row after row, the
// intercept's and residual sums row after row from zero on the side), so the bits are the
// same and the Numba backend's row loop needs no change. T1's sparse problem: the logistic
// full pass 1.53 -> 0.82-0.87 ms, about SciPy's X @ w plus X.T @ r (bench/README.md); chunks of
// 64 rows were ~3% slower, the losses computed amid the dot products or the updates no faster.
// `Index`: the type of the column indices; `standardized`: x~_j = x_j inv_std_j, the scores
// less center (rows.hpp).
template <class T, class Index, bool standardized>
double sum_sparse_rows_one_output(const ModelSpec& s, const Dataset<T>& data,
                                  const Index* __restrict indices, const RowStream& rows,
                                  int64_t lo, int64_t hi, int64_t next_lo, int64_t next_hi,
                                  int64_t lookahead, const double* w, double* __restrict grad,
                                  const double* center, double* residual_sum,
                                  StopCheck* stop) noexcept {
    constexpr int64_t chunk = 128, poll_every = 512;
    static_assert(poll_every % chunk == 0);
    const int64_t d = s.n_features;
    const T* __restrict values = data.csr.values;
    const double* inv_std = data.inv_std;
    const double* weights = data.sample_weight;
    const bool logistic = s.model == Model::logistic, intercept = s.fit_intercept;
    const double shift = intercept ? w[d] : 0.0, offset = standardized ? center[0] : 0.0;
    auto x_at = [&](int64_t e, int64_t j) {
        if constexpr (standardized) return double(values[e]) * inv_std[j];
        else return double(values[e]);
    };
    double f[chunk], y[chunk], loss[chunk];
    int64_t begin[chunk], end[chunk], row_of[chunk];
    double loss_sum = 0.0, intercept_grad = 0.0, rsum = 0.0;
    for (int64_t pos0 = lo; pos0 < hi; pos0 += chunk) {
        const int64_t m = std::min(chunk, hi - pos0);
        for (int64_t i = 0; i < m; ++i) {
            if (lookahead >= 0) {
                const int64_t ahead = pos0 + i + lookahead;
                const int64_t at = ahead < hi ? ahead : next_lo + (ahead - hi);
                if (ahead < hi || at < next_hi) prefetch_sparse_sample(data, rows.row(at));
            }
            const int64_t r = rows.row(pos0 + i);
            row_of[i] = r;
            sparse_row_range(data, r, begin[i], end[i]);
            y[i] = data.y[r];
        }
        // The scores, four rows' chains side by side up to the shortest row's length.
        int64_t i = 0;
        for (; i + 4 <= m; i += 4) {
            double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
            const int64_t b0 = begin[i], b1 = begin[i + 1], b2 = begin[i + 2], b3 = begin[i + 3];
            const int64_t common = std::min(std::min(end[i] - b0, end[i + 1] - b1),
                                            std::min(end[i + 2] - b2, end[i + 3] - b3));
            for (int64_t t = 0; t < common; ++t) {
                const int64_t j0 = int64_t(indices[b0 + t]), j1 = int64_t(indices[b1 + t]);
                const int64_t j2 = int64_t(indices[b2 + t]), j3 = int64_t(indices[b3 + t]);
                a0 = madd(w[j0], x_at(b0 + t, j0), a0);
                a1 = madd(w[j1], x_at(b1 + t, j1), a1);
                a2 = madd(w[j2], x_at(b2 + t, j2), a2);
                a3 = madd(w[j3], x_at(b3 + t, j3), a3);
            }
            double acc[4] = {a0, a1, a2, a3};
            for (int q = 0; q < 4; ++q)
                for (int64_t e = begin[i + q] + common; e < end[i + q]; ++e) {
                    const int64_t j = int64_t(indices[e]);
                    acc[q] = madd(w[j], x_at(e, j), acc[q]);
                }
            for (int q = 0; q < 4; ++q) f[i + q] = acc[q];
        }
        for (; i < m; ++i) {
            double a = 0.0;
            for (int64_t e = begin[i]; e < end[i]; ++e) {
                const int64_t j = int64_t(indices[e]);
                a = madd(w[j], x_at(e, j), a);
            }
            f[i] = a;
        }
        for (i = 0; i < m; ++i) {
            double score = f[i];
            if constexpr (standardized) score = score - offset;
            f[i] = intercept ? score + shift : score;
        }
        // The losses, and in f the residuals.
        i = 0;
        if (logistic)
            for (; i + 4 <= m; i += 4) logistic_loss4(f + i, y + i, loss + i);
        for (; i < m; ++i)
            loss[i] = loss_and_residual(logistic ? Model::logistic : Model::linear, f + i, 1,
                                        y[i]);
        // The gradient, row after row.
        for (i = 0; i < m; ++i) {
            const double weight = weights ? weights[row_of[i]] : 1.0;
            const double rc = f[i] * weight;
            for (int64_t e = begin[i]; e < end[i]; ++e) {
                const int64_t j = int64_t(indices[e]);
                grad[j] = madd(rc, x_at(e, j), grad[j]);
            }
            intercept_grad += rc;
            if constexpr (standardized) rsum += rc;
            loss_sum += weight * loss[i];
        }
        if (stop && (pos0 + m - lo) % poll_every == 0 && tick(*stop, poll_every * d * 3))
            return loss_sum;
    }
    // grad[d] and residual_sum came in as zero, so these are the sums row by row.
    if (intercept) grad[d] += intercept_grad;
    if constexpr (standardized) residual_sum[0] += rsum;
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
    // in order slower than shuffled blocks of rows with these requests (bench/README.md); the
    // one-output loop requests them by bytes instead (stream_ahead, rows.hpp). The
    // far requests (into L2) only for shuffled rows: in order the L2 streamer has them on its
    // way already, and the requests cost the objective's full pass over 500,000 x 100 ~10%.
    const int64_t lookahead = rows.shuffled() || !sparse ? data.prefetch_rows : -1;
    const int64_t far = !sparse && rows.shuffled() ? data.prefetch_l2_rows : 0;
    auto ahead = [&](int64_t pos, int64_t distance) {  // -1: nothing to request there
        const int64_t at = pos + distance < hi ? pos + distance : next_lo + (pos + distance - hi);
        return pos + distance < hi || at < next_hi ? at : -1;
    };
    if constexpr (sparse) {
        if (k == 1) {
            auto chunked = [&](const auto* indices) {
                using Index = std::remove_cv_t<std::remove_pointer_t<decltype(indices)>>;
                return data.mean != nullptr
                           ? sum_sparse_rows_one_output<T, Index, true>(
                                 s, data, indices, rows, lo, hi, next_lo, next_hi, lookahead, w,
                                 grad, center, residual_sum, stop)
                           : sum_sparse_rows_one_output<T, Index, false>(
                                 s, data, indices, rows, lo, hi, next_lo, next_hi, lookahead, w,
                                 grad, center, residual_sum, stop);
            };
            return data.csr.indices64 ? chunked(data.csr.indices64)
                                      : chunked(data.csr.indices32);
        }
    }
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
