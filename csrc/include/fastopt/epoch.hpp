// One training epoch in one call: shuffled minibatches, gradient + penalty, optimizer update
// with the per-update learning rate from a precomputed array, running loss.
// Reference: run_epoch in fastopt/reference/models.py.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <thread>
#include <type_traits>
#include <vector>

#include "fastopt/config.hpp"
#include "fastopt/models.hpp"
#include "fastopt/optimizers.hpp"
#include "fastopt/portable.hpp"
#include "fastopt/shuffle.hpp"

namespace fastopt {

namespace FASTOPT_ISA {

// The rows of a shuffled epoch in visiting order, into `order` (n entries).
inline void epoch_order(uint32_t* order, int64_t n, const EpochSpec& e) noexcept {
    if (e.shuffle_batches)
        shuffled_batch_order(order, uint64_t(n), uint64_t(e.batch_size), e.seed, e.epoch);
    else
        shuffled_order(order, uint64_t(n), e.seed, e.epoch);
}

template <class T>
inline void load_params(const T* w, double* out, int64_t p) noexcept {
    for (int64_t j = 0; j < p; ++j) out[j] = double(w[j]);
}

template <class T>
EpochOutcome run_epoch_one_lane(const ModelSpec& s, const Dataset<T>& data, const OptimConfig& opt,
                       OptimScalars& scalars, T* w, T* const* opt_state, const EpochSpec& e,
                       Workspace<T>& scratch, StopCheck& stop) noexcept {
    const int64_t n = data.n, p = n_params(s), batch = e.batch_size;
    const int64_t steps = (n + batch - 1) / batch;
    // float64 parameters are read where they live, and the gradient goes to the optimizer as
    // it is: no copies of p values per update (they cost as much as a sparse minibatch).
    constexpr bool in_place = std::is_same_v<T, double>;
    Workspace<T> ws = scratch;
    if constexpr (in_place) ws.params = w;
    if (e.shuffle) epoch_order(ws.order, n, e);
    const RowStream rows(e.shuffle ? ws.order : nullptr, n);
    EpochOutcome out;
    if constexpr (!in_place) load_params(w, ws.params, p);
    for (int64_t step = 0; step < steps; ++step) {
        const int64_t first = step * batch;
        const int64_t m = std::min(batch, n - first);
        const BatchSums sums = batch_gradient(s, data, rows, first, m, ws, stop);
        if (stop.stopped) {
            out.status = EpochStatus::interrupted;
            return out;
        }
        const double objective = sums.loss_sum + penalty_value(s, ws.params) * double(m);
        if (!std::isfinite(objective) || !sums.finite_grad) {
            out.status = EpochStatus::nonfinite;
            out.failed_step = step;
            return out;
        }
        if constexpr (in_place) {
            optimizer_step<T>(opt, scalars, e.lrs[step], w, ws.grad, opt_state, p);
        } else {
            for (int64_t j = 0; j < p; ++j) ws.grad_t[j] = T(ws.grad[j]);
            optimizer_step<T>(opt, scalars, e.lrs[step], w, ws.grad_t, opt_state, p);
            load_params(w, ws.params, p);
        }
        out.loss_sum += objective;
        out.steps = step + 1;
    }
    if (!all_finite(w, p)) {
        out.status = EpochStatus::nonfinite;
        out.failed_step = steps - 1;
    }
    return out;
}

// Threads of a split minibatch meet here twice per update; they spin (an update takes tens of
// microseconds, a sleeping wake-up as long), yielding now and then so that an oversubscribed
// machine still makes progress.
class SpinBarrier {
   public:
    explicit SpinBarrier(int64_t parties) noexcept : parties_(parties) {}

    void wait() noexcept {
        const int64_t generation = generation_.load(std::memory_order_acquire);
        if (arrived_.fetch_add(1, std::memory_order_acq_rel) == parties_ - 1) {
            arrived_.store(0, std::memory_order_relaxed);
            generation_.fetch_add(1, std::memory_order_release);
            return;
        }
        for (int64_t spins = 0; generation_.load(std::memory_order_acquire) == generation;
             ++spins) {
            if (spins % 256 == 255) std::this_thread::yield();
        }
    }

   private:
    const int64_t parties_;
    std::atomic<int64_t> arrived_{0};
    std::atomic<int64_t> generation_{0};
};

// A minibatch split into `lanes` contiguous row ranges, each summed on its own (by its own
// thread) and added in lane order: the result depends on the number of lanes, not on timing.
template <class T>
struct Lane {
    std::vector<double> grad, scores, row, residual_sum;
    double loss = 0.0;
};

template <class T>
EpochOutcome run_epoch_lanes(const ModelSpec& s, const Dataset<T>& data, const OptimConfig& opt,
                             OptimScalars& scalars, T* w, T* const* opt_state,
                             const EpochSpec& e, Workspace<T>& ws, StopCheck& stop) noexcept {
    const int64_t n = data.n, p = n_params(s), batch = e.batch_size, lanes = e.threads;
    const int64_t steps = (n + batch - 1) / batch;
    EpochOutcome out;
    std::vector<Lane<T>> lane;
    try {
        lane.resize(size_t(lanes));
        for (auto& l : lane) {
            l.grad.resize(size_t(p));
            l.scores.resize(size_t(s.n_outputs));
            l.row.resize(size_t(standardized_rows(s.n_features) * s.n_features));
            l.residual_sum.resize(size_t(s.n_outputs));
        }
    } catch (...) {  // out of memory: one lane still gives an answer, if not this one
        return run_epoch_one_lane(s, data, opt, scalars, w, opt_state, e, ws, stop);
    }
    if (e.shuffle) epoch_order(ws.order, n, e);
    const RowStream rows(e.shuffle ? ws.order : nullptr, n);
    auto lane_bound = [&](int64_t step, int64_t t) {  // first position of lane t (t <= lanes)
        const int64_t first = std::min(step * batch, n), m = std::min(batch, n - first);
        return first + m * t / lanes;
    };
    auto compute_lane = [&](int64_t step, int64_t t) {
        Lane<T>& l = lane[size_t(t)];
        l.loss = lane_gradient(s, data, rows, lane_bound(step, t), lane_bound(step, t + 1),
                               lane_bound(step + 1, t), lane_bound(step + 1, t + 1), ws.params,
                               l.grad.data(), l.scores.data(), l.row.data(), ws.center,
                               l.residual_sum.data(), t == 0 ? &stop : nullptr);
    };

    // Workers 1..lanes-1 wait for `go` (1: run, -1: none could be started, exit).
    std::atomic<int> go{0};
    std::atomic<bool> done{false};
    SpinBarrier barrier(lanes);
    auto worker = [&](int64_t t) {
        int state;
        while ((state = go.load(std::memory_order_acquire)) == 0) std::this_thread::yield();
        if (state < 0) return;
        for (int64_t step = 0;; ++step) {
            barrier.wait();  // parameters ready, or done
            if (done.load(std::memory_order_acquire)) return;
            compute_lane(step, t);
            barrier.wait();  // lanes summed
        }
    };
    std::vector<std::thread> team;
    bool started = true;
    try {
        team.reserve(size_t(lanes - 1));
        for (int64_t t = 1; t < lanes; ++t) team.emplace_back(worker, t);
    } catch (...) {
        started = false;  // no threads to be had: the lanes run one after another
    }
    go.store(started ? 1 : -1, std::memory_order_release);
    if (!started) {
        for (auto& th : team) th.join();
        team.clear();
    }
    const bool parallel = !team.empty();

    load_params(w, ws.params, p);
    for (int64_t step = 0; step < steps; ++step) {
        const int64_t first = step * batch;
        const int64_t m = std::min(batch, n - first);
        sparse_centering(s, data, ws.params, ws.center);  // before the lanes read it
        if (parallel) barrier.wait();
        compute_lane(step, 0);
        if (parallel) barrier.wait();
        else
            for (int64_t t = 1; t < lanes; ++t) compute_lane(step, t);
        if (stop.stopped) {
            out.status = EpochStatus::interrupted;
            break;
        }
        const int64_t k = s.n_outputs;
        double loss_sum = lane[0].loss;
        for (int64_t j = 0; j < p; ++j) ws.grad[j] = lane[0].grad[size_t(j)];
        for (int64_t c = 0; c < k; ++c) ws.residual_sum[c] = lane[0].residual_sum[size_t(c)];
        for (int64_t t = 1; t < lanes; ++t) {
            loss_sum += lane[size_t(t)].loss;
            const double* g = lane[size_t(t)].grad.data();
            for (int64_t j = 0; j < p; ++j) ws.grad[j] += g[j];
            const double* rs = lane[size_t(t)].residual_sum.data();
            for (int64_t c = 0; c < k; ++c) ws.residual_sum[c] += rs[c];
        }
        const bool finite_grad = finish_gradient(s, data, ws.params, ws.grad, ws.residual_sum, m);
        const double objective = loss_sum + penalty_value(s, ws.params) * double(m);
        if (!std::isfinite(objective) || !finite_grad) {
            out.status = EpochStatus::nonfinite;
            out.failed_step = step;
            break;
        }
        for (int64_t j = 0; j < p; ++j) ws.grad_t[j] = T(ws.grad[j]);
        optimizer_step<T>(opt, scalars, e.lrs[step], w, ws.grad_t, opt_state, p);
        load_params(w, ws.params, p);
        out.loss_sum += objective;
        out.steps = step + 1;
    }
    if (parallel) {
        done.store(true, std::memory_order_release);
        barrier.wait();
        for (auto& th : team) th.join();
    }
    if (out.status == EpochStatus::ok && !all_finite(w, p)) {
        out.status = EpochStatus::nonfinite;
        out.failed_step = steps - 1;
    }
    return out;
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
    auto unscale = [&]() {
        if (scale == 1.0) return;
        sq_sum = 0.0;
        for (int64_t j = 0; j < k * d; ++j) {
            w[j] = T(scale * double(w[j]));
            sq_sum += double(w[j]) * double(w[j]);
        }
        scale = 1.0;
    };
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

// A lazy epoch of scaled SGD with some lr * alpha >= 1 (or not finite) runs exact instead.
template <class T>
inline bool needs_exact_epoch(const ModelSpec& s, const OptimConfig& opt,
                              const EpochSpec& e, int64_t steps) noexcept {
    if (!scaled_sgd(s, opt)) return false;
    for (int64_t step = 0; step < steps; ++step)
        if (!(e.lrs[step] * s.alpha < 1.0)) return true;
    return false;
}

// One epoch; with e.threads > 1 every minibatch is split into that many lanes.
template <class T>
EpochOutcome run_epoch(const ModelSpec& s, const Dataset<T>& data, const OptimConfig& opt,
                       OptimScalars& scalars, T* w, T* const* opt_state, const EpochSpec& e,
                       Workspace<T>& ws, StopCheck& stop) noexcept {
    const int64_t steps = (data.n + e.batch_size - 1) / e.batch_size;
    if (e.lazy && is_sparse(data) && data.mean == nullptr &&
        !needs_exact_epoch<T>(s, opt, e, steps))
        return run_epoch_lazy(s, data, opt, scalars, w, opt_state, e, ws, stop);
    if (e.threads > 1) return run_epoch_lanes(s, data, opt, scalars, w, opt_state, e, ws, stop);
    return run_epoch_one_lane(s, data, opt, scalars, w, opt_state, e, ws, stop);
}

// The full objective L(w) over all rows, in order; its gradient is left in ws.grad.
template <class T>
double objective(const ModelSpec& s, const Dataset<T>& data, const T* w, Workspace<T>& ws,
                 StopCheck& stop) noexcept {
    load_params(w, ws.params, n_params(s));
    const RowStream rows(nullptr, data.n);
    const double loss_sum = batch_gradient(s, data, rows, 0, data.n, ws, stop).loss_sum;
    return loss_sum / double(data.n) + penalty_value(s, ws.params);
}

}  // namespace FASTOPT_ISA
}  // namespace fastopt
