// One epoch for several configurations on the same minibatches (fastopt.fit_many).
//
// Each minibatch's update is the single-configuration one (run_epoch_one_lane) for every
// configuration on the same rows: the same operations in the same order as a separate fit, so
// the same bits, while the rows come from memory once. A shuffled epoch's cost is fetching its
// rows; the arithmetic per row is small. Dense X with one output (linear, logistic) takes four
// rows at a time for all the configurations (many_dense_rows); otherwise configuration 1's
// update brings the minibatch into cache and 2, ..., K read it there.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "fastopt/config.hpp"
#include "fastopt/epoch.hpp"
#include "fastopt/logistic_math.hpp"
#include "fastopt/losses.hpp"
#include "fastopt/many_config.hpp"
#include "fastopt/optimizers.hpp"
#include "fastopt/portable.hpp"
#include "fastopt/row_sums.hpp"
#include "fastopt/rows.hpp"
#include "fastopt/shuffle.hpp"

namespace fastopt {
namespace FASTOPT_ISA {

// Configurations whose rows are summed together: their parameters and gradients
// (2 x 16 x (d + 1) doubles) stay in L1 and L2 beside the rows for d up to a few hundred.
constexpr int64_t max_many_group = 16;

// The rest of minibatch `step`'s update once its sums are in c.ws.grad, as run_epoch_one_lane
// makes it; a non-finite objective or gradient retires the slot.
template <class T>
void many_apply(ConfigSlot<T>& c, const BatchSums& sums, int64_t step, int64_t m) noexcept {
    constexpr bool in_place = std::is_same_v<T, double>;
    const int64_t p = n_params(c.spec);
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

// Dense, unstandardised X with one output (linear and logistic regression), the common case:
// the rows of minibatch [lo, hi) of `rows` read once, four at a time, for every slot in
// `active`, each slot's sums made as sum_dense_row_blocks_one_output makes them: the same
// operations in the same order as every row loop of row_loops.hpp, so the same bits. Four
// rows stay in L1 while all the slots use them. Run one configuration after another, the
// later ones read the minibatch back from L2: 8 configurations took 268 ns a row on X in
// cache against 230 here, and on W1 (X from memory) ~1.03x as long; taking the rows one at a
// time for all the slots, with the updates deferred as sum_dense_rows_one_output defers them,
// took ~1.15x as long as this on W1 (CPU time, interleaved runs).
template <class T>
void many_dense_rows(const Dataset<T>& data, ConfigSlot<T>* const* active, int64_t count,
                     const RowStream& rows, int64_t lo, int64_t hi, double* loss_sums,
                     double* intercept_grads) noexcept {
    constexpr int64_t block = 4;  // logistic_loss4, axpy_rows<4>
    const ModelSpec& s0 = active[0]->spec;
    const int64_t d = s0.n_features, p = n_params(s0);
    const T* X = data.X;
    const double* y = data.y;
    const double* weights = data.sample_weight;
    const Model model = s0.model == Model::logistic ? Model::logistic : Model::linear;
    const bool intercept = s0.fit_intercept;
    const int64_t near = data.prefetch_rows,
                  far = data.prefetch_l2_rows > 0 ? data.prefetch_l2_rows : -1;
    const int64_t end = rows.size();
    for (int64_t i = 0; i < count; ++i) {
        double* grad = active[i]->ws.grad;
        for (int64_t j = 0; j < p; ++j) grad[j] = 0.0;
        loss_sums[i] = intercept_grads[i] = 0.0;
    }
    auto request = [&](int64_t pos) {  // as batch_gradient: on into the next minibatches
        if (far >= 0 && pos + far < end) prefetch_row(X, rows.row(pos + far), d, true);
        if (near >= 0 && pos + near < end) prefetch_sample(data, rows.row(pos + near), d);
    };
    int64_t pos = lo;
    for (; pos + block <= hi; pos += block) {
        const T* x[block];
        double labels[block], weight[block];
        for (int r = 0; r < block; ++r) {
            request(pos + r);
            const int64_t row = rows.row(pos + r);
            x[r] = X + row * d;
            labels[r] = y[row];
            weight[r] = weights ? weights[row] : 1.0;
        }
        for (int64_t i = 0; i < count; ++i) {
            const double* w = active[i]->ws.params;
            double f[block], loss[block], rc[block];
            for (int r = 0; r < block; ++r) {
                const double score = dot<T>(w, x[r], d);
                f[r] = intercept ? score + w[d] : score;
            }
            if (model == Model::logistic) {
                logistic_loss4(f, labels, loss);
            } else {
                for (int r = 0; r < block; ++r)
                    loss[r] = loss_and_residual(model, &f[r], 1, labels[r]);
            }
            for (int r = 0; r < block; ++r) rc[r] = f[r] * weight[r];
            axpy_rows<block>(rc, x, active[i]->ws.grad, d);
            for (int r = 0; r < block; ++r) {
                intercept_grads[i] += rc[r];
                loss_sums[i] += weight[r] * loss[r];
            }
        }
    }
    for (; pos < hi; ++pos) {  // the last rows, one by one, into the same sums
        request(pos);
        const int64_t row = rows.row(pos);
        const T* x = X + row * d;
        const double weight = weights ? weights[row] : 1.0;
        for (int64_t i = 0; i < count; ++i) {
            const double* w = active[i]->ws.params;
            const double score = dot<T>(w, x, d);
            double f = intercept ? score + w[d] : score;
            const double loss = loss_and_residual(model, &f, 1, y[row]);
            const double rc = f * weight;
            axpy<T>(rc, x, active[i]->ws.grad, d);
            intercept_grads[i] += rc;
            loss_sums[i] += weight * loss;
        }
    }
}

// Minibatch `step` of every slot in `active` by many_dense_rows, then each one's update.
template <class T>
void many_dense_step(const Dataset<T>& data, ConfigSlot<T>* const* active, int64_t count,
                     const RowStream& rows, int64_t step, int64_t first, int64_t m,
                     StopCheck& stop) noexcept {
    double loss_sums[max_many_group], intercept_grads[max_many_group];
    for (int64_t g = 0; g < count; g += max_many_group) {
        const int64_t size = std::min(max_many_group, count - g);
        many_dense_rows(data, active + g, size, rows, first, first + m, loss_sums,
                        intercept_grads);
        if (tick(stop, m * active[0]->spec.n_features * 3 * size)) return;  // ~ multiply-adds
        for (int64_t i = 0; i < size; ++i) {
            ConfigSlot<T>& c = *active[g + i];
            const int64_t d = c.spec.n_features;
            if (c.spec.fit_intercept) c.ws.grad[d] += intercept_grads[i];
            const bool finite = finish_gradient(c.spec, data, c.ws.params, c.ws.grad,
                                                c.ws.residual_sum, m);
            many_apply(c, BatchSums{loss_sums[i], finite}, step, m);
        }
    }
}

// Minibatch `step` of one slot by batch_gradient, then its update: the general case (sparse
// or standardised X, softmax).
template <class T>
void many_update(ConfigSlot<T>& c, const Dataset<T>& data, const RowStream& rows, int64_t step,
                 int64_t first, int64_t m, StopCheck& stop) noexcept {
    const BatchSums sums = batch_gradient(c.spec, data, rows, first, m, c.ws, stop);
    if (stop.stopped) return;
    many_apply(c, sums, step, m);
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
    cached.row_blocks = true;  // rows in cache: four at a time (row_loops.hpp), the same bits
    for (int64_t i = 0; i < count; ++i) {
        ConfigSlot<T>& c = slots[i];
        c.out = EpochOutcome{};
        if (!c.active) continue;
        if constexpr (std::is_same_v<T, double>) c.ws.params = c.w;
        else load_params(c.w, c.ws.params, n_params(c.spec));
    }
    const bool dense_one_output = !is_sparse(data) && data.mean == nullptr &&
                                  slots[0].spec.n_outputs == 1;
    std::vector<ConfigSlot<T>*> active;
    try {
        active.reserve(size_t(count));
    } catch (...) {  // out of memory: one configuration after another, as below
    }
    for (int64_t step = 0; step < steps; ++step) {
        const int64_t first = step * batch;
        const int64_t m = std::min(batch, n - first);
        if (dense_one_output && active.capacity() >= size_t(count)) {
            active.clear();
            for (int64_t i = 0; i < count; ++i)
                if (slots[i].active) active.push_back(&slots[i]);
            if (active.empty()) break;  // every configuration failed
            // One configuration alone: the single-configuration loop, which keeps more rows
            // in flight (four rows at a time made W1 ~1.4x slower, row_loops.hpp).
            if (active.size() == 1) many_update(*active[0], data, rows, step, first, m, stop);
            else many_dense_step(data, active.data(), int64_t(active.size()), rows, step, first,
                                 m, stop);
            if (stop.stopped) return EpochStatus::interrupted;
            continue;
        }
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
