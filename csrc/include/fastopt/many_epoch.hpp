// One epoch for several configurations on the same minibatches (fastopt.fit_many).
//
// Each minibatch's update is the single-configuration one (run_epoch_one_lane), run for
// configuration 1, then 2, ..., K on the same rows: the same operations in the same order as a
// separate fit, so the same bits, while the rows come from memory once (for configuration 1)
// and from cache for the others. A shuffled epoch's cost is fetching its rows; the arithmetic
// per row is small.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "fastopt/config.hpp"
#include "fastopt/epoch.hpp"
#include "fastopt/many_config.hpp"
#include "fastopt/optimizers.hpp"
#include "fastopt/row_sums.hpp"
#include "fastopt/rows.hpp"
#include "fastopt/shuffle.hpp"

namespace fastopt {
namespace FASTOPT_ISA {

// The update of minibatch `step` (rows [first, first + m) of `rows`) for one configuration,
// as run_epoch_one_lane makes it; a non-finite objective or gradient retires the slot.
template <class T>
void many_update(ConfigSlot<T>& c, const Dataset<T>& data, const RowStream& rows, int64_t step,
                 int64_t first, int64_t m, StopCheck& stop) noexcept {
    constexpr bool in_place = std::is_same_v<T, double>;
    const int64_t p = n_params(c.spec);
    const BatchSums sums = batch_gradient(c.spec, data, rows, first, m, c.ws, stop);
    if (stop.stopped) return;
    const double objective = sums.loss_sum + penalty_value(c.spec, c.ws.params) * double(m);
    if (!std::isfinite(objective) || !sums.finite_grad) {
        c.out.status = EpochStatus::nonfinite;
        c.out.failed_step = step;
        c.active = false;
        return;
    }
    if constexpr (in_place) {
        optimizer_step<T>(c.opt, c.scalars, c.lrs[step], c.w, c.ws.grad, c.state, p);
    } else {
        for (int64_t j = 0; j < p; ++j) c.ws.grad_t[j] = T(c.ws.grad[j]);
        optimizer_step<T>(c.opt, c.scalars, c.lrs[step], c.w, c.ws.grad_t, c.state, p);
        load_params(c.w, c.ws.params, p);
    }
    c.out.loss_sum += objective;
    c.out.steps = step + 1;
}

// One epoch of every active slot in `slots[0, count)`, on one thread. `order`: n entries of
// scratch for a shuffled epoch. Returns interrupted when `stop` fired (the slots are then
// part-way through the epoch), else ok; each slot's own outcome is in its `out`.
template <class T>
EpochStatus run_many_epoch(const Dataset<T>& data, ConfigSlot<T>* slots, int64_t count,
                           const EpochSpec& e, uint32_t* order, StopCheck& stop) noexcept {
    const int64_t n = data.n, batch = e.batch_size;
    const int64_t steps = (n + batch - 1) / batch;
    if (e.shuffle) epoch_order(order, n, e);
    const RowStream rows(e.shuffle ? order : nullptr, n);
    // The configurations after the first read rows that the first just brought into cache:
    // requesting them again would only cost instructions. The bits do not depend on it.
    Dataset<T> cached = data;
    cached.prefetch_rows = -1;
    cached.prefetch_l2_rows = 0;
    for (int64_t i = 0; i < count; ++i) {
        ConfigSlot<T>& c = slots[i];
        c.out = EpochOutcome{};
        if (!c.active) continue;
        if constexpr (std::is_same_v<T, double>) c.ws.params = c.w;
        else load_params(c.w, c.ws.params, n_params(c.spec));
    }
    for (int64_t step = 0; step < steps; ++step) {
        const int64_t first = step * batch;
        const int64_t m = std::min(batch, n - first);
        bool fetched = false;
        for (int64_t i = 0; i < count; ++i) {
            if (!slots[i].active) continue;
            many_update(slots[i], fetched ? cached : data, rows, step, first, m, stop);
            if (stop.stopped) return EpochStatus::interrupted;
            fetched = true;
        }
        if (!fetched) break;  // every configuration failed
    }
    for (int64_t i = 0; i < count; ++i) {
        ConfigSlot<T>& c = slots[i];
        if (c.active && !all_finite(c.w, n_params(c.spec))) {
            c.out.status = EpochStatus::nonfinite;
            c.out.failed_step = steps - 1;
            c.active = false;
        }
    }
    return EpochStatus::ok;
}

}  // namespace FASTOPT_ISA
}  // namespace fastopt
