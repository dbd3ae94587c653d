// The lean row loops of dense X with one output (linear and logistic regression): the common
// case, where an epoch spends its time.
#pragma once

#include "fastopt/portable.hpp"

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "fastopt/config.hpp"
#include "fastopt/logistic_math.hpp"
#include "fastopt/losses.hpp"
#include "fastopt/rows.hpp"
#include "fastopt/simd.hpp"

#ifndef FASTOPT_ISA
#define FASTOPT_ISA baseline
#endif

namespace fastopt {
namespace FASTOPT_ISA {

// sum_rows for dense, unstandardised X and one output (linear and logistic regression), the
// common case, written lean: the same operations in the same order as accumulate_row, with the
// loop invariants in registers, the intercept's gradient summed on the side and every row
// requested twice ahead (into L2 `far` positions ahead, into L1 `near` ahead; -1: not at all;
// in order, stream_ahead instead: rows.hpp).
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
    const bool in_order = !rows.shuffled();
    if (in_order) near = -1;
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
        // In order, the dot product requests X's bytes ahead (a standardised row's: requested
        // during the standardisation, d = 50 and 100 were 5-10% slower than with the rows 4
        // ahead; during the dot product of the copy, 3-8% faster).
        const double score = dot<Row>(w, x, d, in_order ? stream_ahead(data, r, d) : nullptr);
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

}  // namespace FASTOPT_ISA
}  // namespace fastopt
