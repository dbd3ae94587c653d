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
#include "fastopt/lazy_epoch.hpp"
#include "fastopt/optimizers.hpp"
#include "fastopt/row_sums.hpp"
#include "fastopt/rows.hpp"
#include "fastopt/shuffle.hpp"
#include "fastopt/simd.hpp"

namespace fastopt {

namespace FASTOPT_ISA {

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


// One epoch; with e.threads > 1 every minibatch is split into that many lanes.
template <class T>
EpochOutcome run_epoch(const ModelSpec& s, const Dataset<T>& data, const OptimConfig& opt,
                       OptimScalars& scalars, T* w, T* const* opt_state, const EpochSpec& e,
                       Workspace<T>& ws, StopCheck& stop) noexcept {
    const int64_t steps = (data.n + e.batch_size - 1) / e.batch_size;
    if (e.lazy && is_sparse(data) && data.mean == nullptr &&
        !needs_exact_epoch<T>(s, opt, e, steps)) {
        if (scaled_sgd(s, opt) && e.batch_size == 1 && s.n_outputs == 1 &&
            data.csr.unique_columns)
            return run_epoch_lazy_rows(s, data, scalars, w, e, ws.order, ws.grad, stop);
        return run_epoch_lazy(s, data, opt, scalars, w, opt_state, e, ws, stop);
    }
    if (e.threads > 1) return run_epoch_lanes(s, data, opt, scalars, w, opt_state, e, ws, stop);
    return run_epoch_one_lane(s, data, opt, scalars, w, opt_state, e, ws, stop);
}

}  // namespace FASTOPT_ISA
}  // namespace fastopt
