// Lazy epochs of sparse X: each update touches only the coordinates of its minibatch's columns.
#pragma once

#include "fastopt/portable.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "fastopt/config.hpp"
#include "fastopt/optimizers.hpp"
#include "fastopt/rows.hpp"
#include "fastopt/shuffle.hpp"
#include "fastopt/simd.hpp"

#ifndef FASTOPT_ISA
#define FASTOPT_ISA baseline
#endif

namespace fastopt {
namespace FASTOPT_ISA {

// Scaled SGD keeps the coefficients as w = scale * u: fold `scale` into u (then 1) and recount
// sq_sum, the sum of squares of u, before scale gets small enough to lose digits.
template <class T>
inline void fold_scale(T* w, int64_t count, double& scale, double& sq_sum) noexcept {
    if (scale == 1.0) return;
    sq_sum = 0.0;
    for (int64_t j = 0; j < count; ++j) {
        w[j] = T(scale * double(w[j]));
        sq_sum += double(w[j]) * double(w[j]);
    }
    scale = 1.0;
}

// The rows of a shuffled epoch in visiting order, into `order` (n entries).
inline void epoch_order(uint32_t* order, int64_t n, const EpochSpec& e) noexcept {
    if (e.shuffle_batches)
        shuffled_batch_order(order, uint64_t(n), uint64_t(e.batch_size), e.seed, e.epoch);
    else
        shuffled_order(order, uint64_t(n), e.seed, e.epoch);
}

// Lazy updates for sparse X (e.lazy): each update touches only the active coordinates, the
// coefficients of the columns that have entries in the minibatch's rows (in order of first
// appearance) and the intercepts. Their parameters and optimizer state are gathered into
// compact arrays (slot i of column j: `slot_of`), the gradient is summed there, the usual
// optimizer kernel runs on them with the global step count, and the results are scattered
// back; every other coordinate, and its state, stays as it is. The penalty term of the
// reported objective is kept up to date from the changes of the active coefficients. Needs
// unstandardised X (centring would make every gradient coordinate non-zero).
//
// Plain SGD with an L2 penalty (no momentum, no weight decay) is the exception: its penalty
// shrinks every coefficient at every update, w <- (1 - lr alpha) w - lr g. The coefficients
// are kept as w = scale * u (the scaled-weight trick): an update multiplies `scale` by
// (1 - lr alpha) and moves only the active u, so it costs O(entries) and gives the exact
// epoch's result up to rounding. w holds u during the epoch and w again on every way out.
// An epoch with some lr * alpha >= 1 (the penalty alone would flip the signs) runs exact.
inline bool scaled_sgd(const ModelSpec& s, const OptimConfig& opt) noexcept {
    return opt.kind == Optim::sgd && opt.momentum == 0.0 && opt.weight_decay == 0.0 &&
           s.penalty != Penalty::none && s.alpha != 0.0 && l1_share(s) == 0.0;
}

template <class T>
EpochOutcome run_epoch_lazy(const ModelSpec& s, const Dataset<T>& data, const OptimConfig& opt,
                            OptimScalars& scalars, T* w, T* const* opt_state,
                            const EpochSpec& e, Workspace<T>& ws, StopCheck& stop) noexcept {
    const int64_t n = data.n, d = s.n_features, k = s.n_outputs;
    const int64_t batch = e.batch_size, steps = (n + batch - 1) / batch;
    const int states = state_size(opt);
    const double l1 = l1_share(s), l2 = 1.0 - l1;
    const bool penalized = s.penalty != Penalty::none && s.alpha != 0.0;
    const bool scaled = scaled_sgd(s, opt);
    double scale = 1.0;
    EpochOutcome out;
    // slot_of[j] = (stamp << 32) | slot: column j's slot in this update's compact arrays
    // when its stamp is the update's.
    std::vector<uint64_t> slot_of;
    std::vector<int64_t> active, coords, entry_slot;
    std::vector<double> pd, gd;
    std::vector<T> pc, gc, sc0, sc1, sc2;
    std::vector<T>* compact[3] = {&sc0, &sc1, &sc2};
    try {
        slot_of.assign(size_t(d), 0);
        const size_t most = size_t(std::min<int64_t>(d, batch * 64)) * size_t(k) + size_t(k);
        active.reserve(most);
        coords.reserve(most);
        entry_slot.reserve(most);
        for (auto* v : {&pd, &gd}) v->reserve(most);
        for (auto* v : {&pc, &gc, &sc0, &sc1, &sc2}) v->reserve(most);
    } catch (...) {
        out.status = EpochStatus::nonfinite;  // out of memory: report, change nothing
        out.failed_step = 0;
        return out;
    }
    if (e.shuffle) epoch_order(ws.order, n, e);
    const RowStream rows(e.shuffle ? ws.order : nullptr, n);
    double abs_sum = 0.0, sq_sum = 0.0;  // of the coefficients, for the penalty value
    for (int64_t j = 0; j < k * d; ++j) {
        const double v = double(w[j]);
        abs_sum += std::fabs(v);
        sq_sum += v * v;
    }
    // Scaled SGD: fold `scale` into u (then 1), before it gets small enough to lose digits.
    auto unscale = [&]() { fold_scale(w, k * d, scale, sq_sum); };
    auto stop_at = [&](EpochStatus status, int64_t step) {
        unscale();
        out.status = status;
        out.failed_step = step;
        return out;
    };
    uint64_t stamp = 0;
    for (int64_t step = 0; step < steps; ++step) {
        const int64_t first = step * batch, m = std::min(batch, n - first);
        const double shrink = 1.0 - e.lrs[step] * s.alpha;  // scaled SGD: scale's factor
        if (scaled && scale * shrink < 1e-9) unscale();
        if (++stamp == (uint64_t(1) << 32)) {  // after 2^32 - 1 updates: clear the stamps
            std::fill(slot_of.begin(), slot_of.end(), uint64_t(0));
            stamp = 1;
        }
        active.clear();
        entry_slot.clear();
        int64_t a = 0, na = 0;
        try {
            for (int64_t pos = first; pos < first + m; ++pos) {
                int64_t begin, end;
                if (pos + 2 < first + m) {  // the stamps of a row two ahead: random reads
                    sparse_row_range(data, rows.row(pos + 2), begin, end);
                    for (int64_t q = begin; q < end; ++q)
                        FASTOPT_PREFETCH(slot_of.data() + sparse_column(data, q), 1, 3);
                }
                sparse_row_range(data, rows.row(pos), begin, end);
                for (int64_t q = begin; q < end; ++q) {
                    const int64_t j = sparse_column(data, q);
                    if ((slot_of[size_t(j)] >> 32) != stamp) {
                        slot_of[size_t(j)] = (stamp << 32) | uint64_t(active.size());
                        entry_slot.push_back(int64_t(active.size()));
                        active.push_back(j);
                        // The gather below reads these at random: ask for them now.
                        for (int64_t c = 0; c < k; ++c) {
                            FASTOPT_PREFETCH(w + c * d + j, 0, 3);
                            for (int t = 0; t < states; ++t)
                                FASTOPT_PREFETCH(opt_state[t] + c * d + j, 0, 3);
                        }
                    } else {
                        entry_slot.push_back(int64_t(slot_of[size_t(j)] & 0xFFFFFFFFULL));
                    }
                }
            }
            na = int64_t(active.size());
            a = k * na + (s.fit_intercept ? k : 0);
            pd.resize(size_t(a));
            gd.assign(size_t(a), 0.0);
            pc.resize(size_t(a));
            gc.resize(size_t(a));
            for (int t = 0; t < states; ++t) compact[t]->resize(size_t(a));
        } catch (...) {
            return stop_at(EpochStatus::nonfinite, step);
        }
        coords.resize(size_t(a));  // slot -> index in the flat parameters
        for (int64_t c = 0, i = 0; c < k; ++c)
            for (int64_t u = 0; u < na; ++u, ++i) coords[size_t(i)] = c * d + active[size_t(u)];
        for (int64_t c = 0; c < k && s.fit_intercept; ++c) coords[size_t(k * na + c)] = k * d + c;
        for (int64_t i = 0; i < a; ++i) {
            const int64_t q = coords[size_t(i)];
            pc[size_t(i)] = w[q];
            pd[size_t(i)] = scaled && i < k * na ? scale * double(w[q]) : double(w[q]);
            for (int t = 0; t < states; ++t) (*compact[t])[size_t(i)] = opt_state[t][q];
        }
        double loss_sum = 0.0;
        const int64_t* slots = entry_slot.data();  // the rows' entries, in the order collected
        for (int64_t pos = first; pos < first + m; ++pos) {
            const int64_t r = rows.row(pos);
            int64_t begin, end;
            sparse_row_range(data, r, begin, end);
            loss_sum += accumulate_sparse_row(s, data, r, pd.data(), gd.data(), ws.scores,
                                              nullptr, nullptr, slots, na);
            slots += end - begin;
        }
        if (tick(stop, m * (na + 1) * (2 * k + 1))) return stop_at(EpochStatus::interrupted, step);
        const double penalty =
            scaled ? s.alpha * (0.5 * (scale * scale * sq_sum))
                   : (penalized ? s.alpha * (l1 * abs_sum + 0.5 * l2 * sq_sum) : 0.0);
        const double objective = loss_sum + penalty * double(m);
        bool finite = std::isfinite(objective);
        for (int64_t i = 0; i < a; ++i) {
            double g = gd[size_t(i)] / double(m);
            if (penalized && !scaled && i < k * na) {
                const double v = pd[size_t(i)];
                const double sign = v > 0 ? 1.0 : (v < 0 ? -1.0 : 0.0);
                g = g + s.alpha * (l1 * sign + l2 * v);
            }
            finite = finite && std::isfinite(g);
            gd[size_t(i)] = g;
            gc[size_t(i)] = T(g);
        }
        if (!finite) return stop_at(EpochStatus::nonfinite, step);
        const double next_scale = scale * shrink;
        if (scaled) {
            // u <- u - lr g / scale' on the active coefficients; the intercepts as sgd() does.
            const double lr = e.lrs[step];
            const T neg_lr = T(-lr);
            for (int64_t i = 0; i < k * na; ++i)
                pc[size_t(i)] = T(double(pc[size_t(i)]) - lr * gd[size_t(i)] / next_scale);
            for (int64_t i = k * na; i < a; ++i) pc[size_t(i)] = pc[size_t(i)] + neg_lr * gc[size_t(i)];
            scalars.step += 1;
        } else {
            T* compact_state[3] = {sc0.data(), sc1.data(), sc2.data()};
            optimizer_step<T>(opt, scalars, e.lrs[step], pc.data(), gc.data(), compact_state, a);
        }
        if (!all_finite(pc.data(), a)) return stop_at(EpochStatus::nonfinite, step);
        for (int64_t i = 0; i < a; ++i) {
            const int64_t q = coords[size_t(i)];
            if (i < k * na) {
                const double before = scaled ? double(w[q]) : pd[size_t(i)];
                const double after = double(pc[size_t(i)]);
                abs_sum += std::fabs(after) - std::fabs(before);
                sq_sum += after * after - before * before;
            }
            w[q] = pc[size_t(i)];
            for (int t = 0; t < states; ++t) opt_state[t][q] = (*compact[t])[size_t(i)];
        }
        if (scaled) scale = next_scale;
        out.loss_sum += objective;
        out.steps = step + 1;
    }
    unscale();
    return out;
}

// Lazy scaled SGD with one row per update (batch_size 1, one output) on CSR X whose rows have
// no column twice (data.csr.unique_columns): each entry is then its own active coordinate, in
// the order run_epoch_lazy gives the slots, so the same operations in the same order give the
// same bits without the active set, the gather and the scatter. Two passes over the row's
// entries per update: the score, then the update of each coefficient with its change to
// sq_sum. The update is written as it goes; old values are kept in `undo` (n_features doubles)
// and put back when a value turns out not finite, so that w is left as before that update.
// S1-shaped rows (50 entries): ~8,900 -> ~1,600 instructions an update (bench/README.md).
template <class T>
EpochOutcome run_epoch_lazy_rows(const ModelSpec& s, const Dataset<T>& data, OptimScalars& scalars,
                                 T* w, const EpochSpec& e, uint32_t* order, double* undo,
                                 StopCheck& stop) noexcept {
    const int64_t n = data.n, d = s.n_features;
    const bool intercept = s.fit_intercept;
    const double alpha = s.alpha;
    const T* values = data.csr.values;
    const double* y = data.y;
    const double* weights = data.sample_weight;
    EpochOutcome out;
    if (e.shuffle) epoch_order(order, n, e);
    const RowStream rows(e.shuffle ? order : nullptr, n);
    double sq_sum = 0.0, scale = 1.0;  // as run_epoch_lazy: w = scale * u, sq_sum of u
    for (int64_t j = 0; j < d; ++j) {
        const double v = double(w[j]);
        sq_sum += v * v;
    }
    auto unscale = [&]() { fold_scale(w, d, scale, sq_sum); };
    auto stop_at = [&](EpochStatus status, int64_t step) {
        unscale();
        out.status = status;
        out.failed_step = step;
        return out;
    };
    // Rows come at random: their entries are requested two updates ahead, and the coefficients
    // of the next row's columns one update ahead.
    auto request_entries = [&](int64_t r) {
        int64_t begin, end;
        sparse_row_range(data, r, begin, end);
        const char* v = reinterpret_cast<const char*>(values + begin);
        for (int64_t b = 0; b < (end - begin) * int64_t(sizeof(T)); b += 64)
            FASTOPT_PREFETCH(v + b, 0, 3);
        if (data.csr.indices64) {
            const char* c = reinterpret_cast<const char*>(data.csr.indices64 + begin);
            for (int64_t b = 0; b < (end - begin) * 8; b += 64) FASTOPT_PREFETCH(c + b, 0, 3);
        } else {
            const char* c = reinterpret_cast<const char*>(data.csr.indices32 + begin);
            for (int64_t b = 0; b < (end - begin) * 4; b += 64) FASTOPT_PREFETCH(c + b, 0, 3);
        }
        FASTOPT_PREFETCH(y + r, 0, 3);
        if (weights) FASTOPT_PREFETCH(weights + r, 0, 3);
    };
    auto request_coefficients = [&](int64_t r) {
        int64_t begin, end;
        sparse_row_range(data, r, begin, end);
        for (int64_t q = begin; q < end; ++q) FASTOPT_PREFETCH(w + sparse_column(data, q), 1, 3);
    };
    for (int64_t step = 0; step < n; ++step) {
        const double lr = e.lrs[step];
        const double shrink = 1.0 - lr * alpha;
        if (scale * shrink < 1e-9) unscale();
        if (step + 2 < n) request_entries(rows.row(step + 2));
        if (step + 1 < n) request_coefficients(rows.row(step + 1));
        const int64_t r = rows.row(step);
        int64_t begin, end;
        sparse_row_range(data, r, begin, end);
        double score = 0.0;
        for (int64_t q = begin; q < end; ++q)
            score = madd(scale * double(w[sparse_column(data, q)]), double(values[q]), score);
        double f = intercept ? score + double(w[d]) : score;
        const double loss = loss_and_residual(s.model, &f, 1, y[r]);
        const double weight = weights ? weights[r] : 1.0;
        const double rc = f * weight;
        const double loss_sum = 0.0 + weight * loss;
        if (tick(stop, (end - begin + 1) * 3)) return stop_at(EpochStatus::interrupted, step);
        const double penalty = alpha * (0.5 * (scale * scale * sq_sum));
        const double objective = loss_sum + penalty * 1.0;
        const double next_scale = scale * shrink;
        const double sq_before = sq_sum;
        // As run_epoch_lazy: a non-finite objective or gradient stops before the update, a
        // non-finite result after it (the step counted). v - v is NaN exactly where v is
        // infinite or NaN, and 0 elsewhere, so a sum of them tells whether any was: two
        // instructions a value instead of a test and a branch-free or on the bits.
        double grad_check = objective - objective, value_check = 0.0;
        for (int64_t q = begin; q < end; ++q) {
            const int64_t j = sparse_column(data, q);
            const double g = madd(rc, double(values[q]), 0.0);  // the gradient's only term
            const double before = double(w[j]);
            const T after = T(before - lr * g / next_scale);
            grad_check += g - g;
            value_check += double(after - after);
            undo[q - begin] = before;
            w[j] = after;
            sq_sum += double(after) * double(after) - before * before;
        }
        T after_intercept = T(0);
        if (intercept) {
            const double g = 0.0 + rc;
            after_intercept = w[d] + T(-lr) * T(g);
            grad_check += g - g;
            value_check += double(after_intercept - after_intercept);
        }
        const bool bad_grad = std::isnan(grad_check);
        if (bad_grad || std::isnan(value_check)) {
            for (int64_t q = begin; q < end; ++q) w[sparse_column(data, q)] = T(undo[q - begin]);
            sq_sum = sq_before;
            if (!bad_grad) scalars.step += 1;
            return stop_at(EpochStatus::nonfinite, step);
        }
        if (intercept) w[d] = after_intercept;
        scalars.step += 1;
        scale = next_scale;
        out.loss_sum += objective;
        out.steps = step + 1;
    }
    unscale();
    return out;
}

// A lazy epoch of scaled SGD with some lr * alpha >= 1 (or not finite) runs exact instead.
template <class T>
inline bool needs_exact_epoch(const ModelSpec& s, const OptimConfig& opt,
                              const EpochSpec& e, int64_t steps) noexcept {
    if (!scaled_sgd(s, opt)) return false;
    for (int64_t step = 0; step < steps; ++step)
        if (!(e.lrs[step] * s.alpha < 1.0)) return true;
    return false;
}

}  // namespace FASTOPT_ISA
}  // namespace fastopt
