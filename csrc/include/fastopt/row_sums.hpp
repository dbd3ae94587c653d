// Minibatch gradients: the rows of a minibatch (or of one thread's share of it) summed, then
// the mean and the penalty added.
//
// Everything is accumulated in double whatever T is; dot products use fixed lanes summed in a
// fixed order, so results do not depend on the instruction set the kernels were built for.
#pragma once

#include <cstdint>

#include "fastopt/config.hpp"
#include "fastopt/row_loops.hpp"
#include "fastopt/rows.hpp"

#ifndef FASTOPT_ISA
#define FASTOPT_ISA baseline
#endif

namespace fastopt {
namespace FASTOPT_ISA {

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
