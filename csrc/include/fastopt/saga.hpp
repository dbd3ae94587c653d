// SAGA epochs: the table of per-row gradient scalars, the running sums of the stored
// gradients, a proximal step for the L1 term. Sparse rows update their own columns only; every
// other column catches up in closed form when a row needs it, and all of them at the epoch's
// end. Reference (the algorithm, step by step): fastopt/reference/saga.py.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "fastopt/config.hpp"
#include "fastopt/losses.hpp"
#include "fastopt/rows.hpp"
#include "fastopt/shuffle.hpp"
#include "fastopt/simd.hpp"

#ifndef FASTOPT_ISA
#define FASTOPT_ISA baseline
#endif

namespace fastopt {
namespace FASTOPT_ISA {

// The constants of one coordinate's update w <- soft(q w - step g, step l1), q = 1 - step l2.
struct SagaStep {
    double step, l1, l2;
    double inv_n;
    double log_q;  // log(q), for q^m = 1 + expm1(m log_q)
    const double* decay;  // expm1(k log_q) for k = 0..n, or null
    double inv_step_l2;   // 1 / (step l2), or 0 without an L2 part
};

// sign(v) max(|v| - t, 0), without branches: v minus v clamped to [-t, t].
inline double soft_threshold(double v, double t) noexcept {
    return v - std::min(std::max(v, -t), t);
}

// k steps of a + <- q a + drift from `a` (an affine recurrence, monotone towards its fixed
// point drift / (1 - q)): a + (q^k - 1) (a - fixed).
inline double affine_steps(double a, double drift, int64_t k, const SagaStep& c) noexcept {
    if (c.l2 == 0.0) return a + double(k) * drift;
    const double fixed = drift * c.inv_step_l2;
    const double decay = c.decay ? c.decay[k] : std::expm1(double(k) * c.log_q);
    return a + decay * (a - fixed);
}

// m updates of a coordinate whose row term is zero (g = sums / n fixed):
// w <- soft(q w - step g, step l1), in closed form. Away from zero the soft threshold only
// shifts by sign(w) step l1, so w follows an affine recurrence until it reaches zero; there it
// stays when |g| <= l1, else it leaves to the side where it stays (its fixed point lies there).
// So at most three pieces: the crossing step is found by bisection on the closed form.
inline double catch_up(double w, double g, int64_t m, const SagaStep& c) noexcept {
    if (m <= 0) return w;
    if (c.l1 == 0.0) return affine_steps(w, -c.step * g, m, c);
    for (int piece = 0; piece < 4 && m > 0; ++piece) {
        if (w == 0.0) {
            if (std::fabs(g) <= c.l1) return 0.0;
            w = soft_threshold(-c.step * g, c.step * c.l1);
            --m;
            continue;
        }
        const double side = w > 0 ? 1.0 : -1.0;
        const double drift = -c.step * (g + side * c.l1);
        const double end = affine_steps(w, drift, m, c);
        if (side * end > 0) return end;  // monotone: on w's side all the way
        int64_t low = 0, high = m;  // side * a(low) > 0 >= side * a(high)
        while (high - low > 1) {
            const int64_t mid = low + (high - low) / 2;
            if (side * affine_steps(w, drift, mid, c) > 0) low = mid;
            else high = mid;
        }
        const double before = affine_steps(w, drift, low, c);
        w = soft_threshold((1.0 - c.step * c.l2) * before - c.step * g, c.step * c.l1);
        m -= high;
    }
    for (; m > 0; --m)  // rounding kept the pieces from closing: finish step by step
        w = soft_threshold((1.0 - c.step * c.l2) * w - c.step * g, c.step * c.l1);
    return w;
}

// One coordinate's SAGA update from its row term `delta_x` (reference step 3); the sum is
// updated after (step 4).
inline double saga_update(double w, double delta_x, double& sum, const SagaStep& c) noexcept {
    const double g = delta_x + sum * c.inv_n + c.l2 * w;
    sum += delta_x;
    return soft_threshold(w - c.step * g, c.step * c.l1);
}

// The residuals of row r from its scores in `f` (n_outputs): loss_and_residual, weighted, and
// turned into the table's change delta (left in f); the table takes the new values.
template <class T>
inline double row_delta(const ModelSpec& s, const Dataset<T>& data, int64_t r, double* f,
                        double* table) noexcept {
    const int64_t k = s.n_outputs;
    const double loss = loss_and_residual(s.model, f, k, data.y[r]);
    const double weight = data.sample_weight ? data.sample_weight[r] : 1.0;
    double* stored = table + r * k;
    for (int64_t c = 0; c < k; ++c) {
        const double value = f[c] * weight;
        f[c] = value - stored[c];
        stored[c] = value;
    }
    return weight * loss;
}

// The intercepts' step and sums (never penalised): plain SAGA.
inline void intercept_update(const ModelSpec& s, const double* delta, double* w, double* sums,
                             const SagaStep& c) noexcept {
    if (!s.fit_intercept) return;
    const int64_t k = s.n_outputs, offset = s.n_outputs * s.n_features;
    for (int64_t ci = 0; ci < k; ++ci) {
        w[offset + ci] -= c.step * (delta[ci] + sums[offset + ci] * c.inv_n);
        sums[offset + ci] += delta[ci];
    }
}

// A dense row (x of type X: T, or double for a standardised or densified row): scores, loss,
// table, then every coordinate's update. Returns s_r l_r; `bad` collects non-finite values.
template <class T, class X>
inline double dense_saga_row(const ModelSpec& s, const Dataset<T>& data, int64_t r,
                             const X* __restrict x, SagaArrays& a, const SagaStep& c,
                             uint64_t& bad) noexcept {
    const int64_t d = s.n_features, k = s.n_outputs;
    double* f = a.scores;
    for (int64_t ci = 0; ci < k; ++ci) {
        const double score = dot<X>(a.w + ci * d, x, d);
        f[ci] = s.fit_intercept ? score + a.w[k * d + ci] : score;
    }
    const double loss = row_delta(s, data, r, f, a.table);
    for (int64_t ci = 0; ci < k; ++ci) {
        const double delta = f[ci];
        double* __restrict w = a.w + ci * d;
        double* __restrict sums = a.sums + ci * d;
        for (int64_t j = 0; j < d; ++j) {
            w[j] = saga_update(w[j], delta * double(x[j]), sums[j], c);
            bad |= uint64_t(nonfinite(w[j]));
        }
    }
    intercept_update(s, f, a.w, a.sums, c);
    return loss;
}

// Column j of every output brought up to step `t` (its updates since a.last[j]).
inline void catch_up_column(const ModelSpec& s, int64_t j, int64_t t, SagaArrays& a,
                            const SagaStep& c) noexcept {
    const int64_t m = t - a.last[j], d = s.n_features;
    if (m <= 0) return;
    for (int64_t ci = 0; ci < s.n_outputs; ++ci) {
        const int64_t idx = ci * d + j;
        a.w[idx] = catch_up(a.w[idx], a.sums[idx] * c.inv_n, m, c);
    }
    a.last[j] = t;
}

// A sparse row at step t (unstandardised X, one entry per column): its columns caught up,
// scores, loss, table, and the update of its columns only; the others wait (a.last).
template <class T>
inline double sparse_saga_row(const ModelSpec& s, const Dataset<T>& data, int64_t r, int64_t t,
                              SagaArrays& a, const SagaStep& c, uint64_t& bad) noexcept {
    const int64_t d = s.n_features, k = s.n_outputs;
    int64_t begin, end;
    sparse_row_range(data, r, begin, end);
    const T* values = data.csr.values;
    double* f = a.scores;
    std::fill(f, f + k, 0.0);
    for (int64_t e = begin; e < end; ++e) {  // each column caught up, then read
        const int64_t j = sparse_column(data, e);
        catch_up_column(s, j, t, a, c);
        for (int64_t ci = 0; ci < k; ++ci) f[ci] = madd(a.w[ci * d + j], double(values[e]), f[ci]);
    }
    if (s.fit_intercept)
        for (int64_t ci = 0; ci < k; ++ci) f[ci] += a.w[k * d + ci];
    const double loss = row_delta(s, data, r, f, a.table);
    for (int64_t e = begin; e < end; ++e) {
        const int64_t j = sparse_column(data, e);
        const double x = double(values[e]);
        for (int64_t ci = 0; ci < k; ++ci) {
            const int64_t idx = ci * d + j;
            a.w[idx] = saga_update(a.w[idx], f[ci] * x, a.sums[idx], c);
            bad |= uint64_t(nonfinite(a.w[idx]));
        }
        a.last[j] = t + 1;
    }
    intercept_update(s, f, a.w, a.sums, c);
    return loss;
}

// Row r of sparse, standardised X as a dense row: x~_j = (x_j - mean_j) inv_std_j, which is
// non-zero in every column, so such rows take the dense update (O(n_features) a row).
template <class T>
inline void densify_row(const Dataset<T>& data, int64_t r, int64_t d, double* out) noexcept {
    for (int64_t j = 0; j < d; ++j) out[j] = -data.mean[j] * data.inv_std[j];
    int64_t begin, end;
    sparse_row_range(data, r, begin, end);
    for (int64_t e = begin; e < end; ++e) {
        const int64_t j = sparse_column(data, e);
        out[j] = (double(data.csr.values[e]) - data.mean[j]) * data.inv_std[j];
    }
}

// One SAGA epoch over the rows in shuffled_order(n, seed, epoch); the arrays of `a` updated in
// place. loss_sum: sum of s_i l_i, each at the parameters before its row's update. A
// non-finite loss or parameter stops the epoch (status nonfinite, failed_step its position);
// Ctrl-C (stop.poll) stops it too (status interrupted). Every way out leaves the columns of
// a sparse X caught up.
template <class T>
EpochOutcome saga_epoch(const ModelSpec& s, const Dataset<T>& data, const SagaSpec& e,
                        SagaArrays& a, StopCheck& stop) noexcept {
    const int64_t n = data.n, d = s.n_features, k = s.n_outputs;
    const double l1 = s.penalty == Penalty::none ? 0.0 : s.alpha * l1_share(s);
    const double l2 = s.penalty == Penalty::none ? 0.0 : s.alpha * (1.0 - l1_share(s));
    const bool sparse = is_sparse(data), lazy = sparse && data.mean == nullptr;
    const double log_q = std::log1p(-e.step * l2);
    const bool tabled = lazy && l2 != 0.0 && a.decay != nullptr;
    if (tabled)
        for (int64_t k = 0; k <= n; ++k) a.decay[k] = std::expm1(double(k) * log_q);
    const SagaStep c{e.step, l1, l2, 1.0 / double(n), log_q, tabled ? a.decay : nullptr,
                     l2 != 0.0 ? 1.0 / (e.step * l2) : 0.0};
    shuffled_order(a.order, uint64_t(n), e.seed, e.epoch);
    if (lazy) std::fill(a.last, a.last + d, int64_t(0));
    const int64_t ahead = std::max<int64_t>(data.prefetch_rows, 1);
    EpochOutcome out;
    auto finish = [&](int64_t t) {  // the deferred updates of steps < t
        if (lazy)
            for (int64_t j = 0; j < d; ++j) catch_up_column(s, j, t, a, c);
    };
    for (int64_t t = 0; t < n; ++t) {
        const int64_t r = int64_t(a.order[t]);
        if (t + ahead < n) {  // rows are random reads: ask for one `ahead` rows early
            const int64_t next = int64_t(a.order[t + ahead]);
            FASTOPT_PREFETCH(a.table + next * k, 1, 3);
            if (sparse) prefetch_sparse_sample(data, next);
            else prefetch_sample(data, next, d);
        }
        uint64_t bad = 0;
        double loss;
        if (lazy) {
            loss = sparse_saga_row(s, data, r, t, a, c, bad);
        } else if (sparse) {
            densify_row(data, r, d, a.row);
            loss = dense_saga_row<T, double>(s, data, r, a.row, a, c, bad);
        } else if (data.mean != nullptr) {
            standardize_row(data, data.X + r * d, d, a.row);
            loss = dense_saga_row<T, double>(s, data, r, a.row, a, c, bad);
        } else {
            loss = dense_saga_row<T, T>(s, data, r, data.X + r * d, a, c, bad);
        }
        out.loss_sum += loss;
        if (bad != 0 || !std::isfinite(out.loss_sum)) {
            finish(t + 1);
            out.status = EpochStatus::nonfinite;
            out.failed_step = t;
            return out;
        }
        out.steps = t + 1;
        int64_t work = d;  // coordinates the row updated
        if (lazy) {
            int64_t begin, end;
            sparse_row_range(data, r, begin, end);
            work = std::max<int64_t>(end - begin, 1);
        }
        if (tick(stop, 4 * k * work)) {
            finish(t + 1);
            out.status = EpochStatus::interrupted;
            return out;
        }
    }
    finish(n);
    if (lazy && !all_finite(a.w, n_params(s))) {
        out.status = EpochStatus::nonfinite;
        out.failed_step = n - 1;
    }
    return out;
}

}  // namespace FASTOPT_ISA
}  // namespace fastopt
