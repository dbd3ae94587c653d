// One training epoch in one call: shuffled minibatches, gradient + penalty, optimizer update
// with the per-update learning rate from a precomputed array, running loss.
// Reference: run_epoch in fastopt/reference/models.py.
#pragma once

#include <cmath>
#include <cstdint>
#include <algorithm>

#include "fastopt/config.hpp"
#include "fastopt/models.hpp"
#include "fastopt/optimizers.hpp"
#include "fastopt/shuffle.hpp"

namespace fastopt {

namespace FASTOPT_ISA {

template <class T>
inline void load_params(const T* w, double* out, int64_t p) noexcept {
    for (int64_t j = 0; j < p; ++j) out[j] = double(w[j]);
}

template <class T>
inline bool all_finite(const T* v, int64_t p) noexcept {
    bool ok = true;
    for (int64_t j = 0; j < p; ++j) ok &= std::isfinite(v[j]);
    return ok;
}

template <class T>
EpochOutcome run_epoch(const ModelSpec& s, const Dataset<T>& data, const OptimConfig& opt,
                       OptimScalars& scalars, T* w, T* const* opt_state, const EpochSpec& e,
                       Workspace<T>& ws, StopCheck& stop) noexcept {
    const int64_t n = data.n, p = n_params(s), batch = e.batch_size;
    const int64_t steps = (n + batch - 1) / batch;
    const Permutation permutation(uint64_t(n), e.seed, e.epoch);
    RowStream rows(e.shuffle ? &permutation : nullptr, n, ws.rows);
    EpochOutcome out;
    load_params(w, ws.params, p);
    for (int64_t step = 0; step < steps; ++step) {
        const int64_t first = step * batch;
        const int64_t m = std::min(batch, n - first);
        const double loss_sum = batch_gradient(s, data, rows, first, m, ws, stop);
        if (stop.stopped) {
            out.status = EpochStatus::interrupted;
            return out;
        }
        const double objective = loss_sum + penalty_value(s, ws.params) * double(m);
        if (!std::isfinite(objective) || !all_finite(ws.grad, p)) {
            out.status = EpochStatus::nonfinite;
            out.failed_step = step;
            return out;
        }
        for (int64_t j = 0; j < p; ++j) ws.grad_t[j] = T(ws.grad[j]);
        optimizer_step<T>(opt, scalars, e.lrs[step], w, ws.grad_t, opt_state, p);
        load_params(w, ws.params, p);
        out.loss_sum += objective;
        out.steps = step + 1;
    }
    if (!all_finite(w, p)) {
        out.status = EpochStatus::nonfinite;
        out.failed_step = steps - 1;
    }
    return out;
}

// The full objective L(w) over all rows, in order; its gradient is left in ws.grad.
template <class T>
double objective(const ModelSpec& s, const Dataset<T>& data, const T* w, Workspace<T>& ws,
                 StopCheck& stop) noexcept {
    load_params(w, ws.params, n_params(s));
    RowStream rows(nullptr, data.n, ws.rows);
    const double loss_sum = batch_gradient(s, data, rows, 0, data.n, ws, stop);
    return loss_sum / double(data.n) + penalty_value(s, ws.params);
}

}  // namespace FASTOPT_ISA
}  // namespace fastopt
