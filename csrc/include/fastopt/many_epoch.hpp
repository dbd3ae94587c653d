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

#if defined(__AVX2__) && defined(__FMA__)
// dot's final sums of four rows at once, each to the bit: acc[r] holds row r's sixteen lanes
// v, tail the four rows' tails. Per row v[l] + v[l + 8], then t_k = c_k + c_{k+4}, then
// ((t_0 + t_1) + (t_2 + t_3)) + tail: dot's additions, with the rows in the lanes (a 4 x 4
// transpose) instead of one row's horizontal sums. The result goes to memory as one vector:
// the caller reads it back as a vector (scalar stores then a vector load stall the forwarding).
inline void reduce_rows4(const double (*acc)[16], __m256d tail, double* out) noexcept {
    __m256d t[4];
    for (int r = 0; r < 4; ++r) {
        const __m256d c03 = _mm256_add_pd(_mm256_load_pd(acc[r]), _mm256_load_pd(acc[r] + 8));
        const __m256d c47 =
            _mm256_add_pd(_mm256_load_pd(acc[r] + 4), _mm256_load_pd(acc[r] + 12));
        t[r] = _mm256_add_pd(c03, c47);
    }
    const __m256d lo01 = _mm256_unpacklo_pd(t[0], t[1]), hi01 = _mm256_unpackhi_pd(t[0], t[1]);
    const __m256d lo23 = _mm256_unpacklo_pd(t[2], t[3]), hi23 = _mm256_unpackhi_pd(t[2], t[3]);
    const __m256d k0 = _mm256_permute2f128_pd(lo01, lo23, 0x20);  // t_r[0] for r = 0..3
    const __m256d k1 = _mm256_permute2f128_pd(hi01, hi23, 0x20);
    const __m256d k2 = _mm256_permute2f128_pd(lo01, lo23, 0x31);
    const __m256d k3 = _mm256_permute2f128_pd(hi01, hi23, 0x31);
    const __m256d sum = _mm256_add_pd(_mm256_add_pd(k0, k1), _mm256_add_pd(k2, k3));
    _mm256_store_pd(out, _mm256_add_pd(sum, tail));
}

// The tails of dot for four rows, j in [from, d), the rows side by side.
template <class T>
inline __m256d tails4(const double* w, const T* const* x, int64_t from, int64_t d) noexcept {
    __m256d tail = _mm256_setzero_pd();
    for (int64_t j = from; j < d; ++j)
        tail = _mm256_fmadd_pd(_mm256_set1_pd(w[j]),
                               _mm256_set_pd(double(x[3][j]), double(x[2][j]),
                                             double(x[1][j]), double(x[0][j])),
                               tail);
    return tail;
}
#endif

// dot<T>(w, x[r], d) of four rows, each to the bit (the same lanes, multiply-adds and final
// sums), with each chunk of w loaded once for the four: the dot products of many_dense_rows
// were bound by loads (two per multiply-add). The sixteen lanes go in two halves, eight
// accumulators each, so that they stay in the sixteen AVX2 registers. `out`: 32-byte aligned.
template <class T>
inline void dot4(const double* __restrict w, const T* const* x, int64_t d,
                 double* out) noexcept {
#if defined(__AVX2__) && defined(__FMA__)
    alignas(32) double acc[4][16];
    const int64_t wide = d / 16 * 16;
    for (int half = 0; half < 2; ++half) {
        const int64_t o = 8 * half;  // lanes o..o+7: w[j + o .. j + o + 7]
        __m256d a[4][2];
        for (int r = 0; r < 4; ++r) a[r][0] = a[r][1] = _mm256_setzero_pd();
        for (int64_t j = 0; j < wide; j += 16) {
            const __m256d w0 = _mm256_loadu_pd(w + j + o), w1 = _mm256_loadu_pd(w + j + o + 4);
            for (int r = 0; r < 4; ++r) {
                a[r][0] = _mm256_fmadd_pd(w0, load4(x[r] + j + o), a[r][0]);
                a[r][1] = _mm256_fmadd_pd(w1, load4(x[r] + j + o + 4), a[r][1]);
            }
        }
        for (int r = 0; r < 4; ++r) {
            _mm256_store_pd(acc[r] + o, a[r][0]);
            _mm256_store_pd(acc[r] + o + 4, a[r][1]);
        }
    }
    reduce_rows4(acc, tails4(w, x, wide, d), out);
#else
    for (int r = 0; r < 4; ++r) out[r] = dot<T>(w, x[r], d);
#endif
}

// dot4 for two parameter vectors a and b at once, each to the bit: each chunk of the four rows
// is loaded once for both (a quarter of the sixteen lanes at a time: 8 accumulators).
template <class T>
inline void dot4x2(const double* __restrict wa, const double* __restrict wb,
                   const T* const* x, int64_t d, double* out_a, double* out_b) noexcept {
#if defined(__AVX2__) && defined(__FMA__)
    alignas(32) double acc[2][4][16];
    const int64_t wide = d / 16 * 16;
    for (int64_t q = 0; q < 16; q += 4) {  // lanes q..q+3
        __m256d a[2][4];
        for (int r = 0; r < 4; ++r) a[0][r] = a[1][r] = _mm256_setzero_pd();
        for (int64_t j = 0; j < wide; j += 16) {
            const __m256d va = _mm256_loadu_pd(wa + j + q), vb = _mm256_loadu_pd(wb + j + q);
            for (int r = 0; r < 4; ++r) {
                const __m256d xv = load4(x[r] + j + q);
                a[0][r] = _mm256_fmadd_pd(va, xv, a[0][r]);
                a[1][r] = _mm256_fmadd_pd(vb, xv, a[1][r]);
            }
        }
        for (int c = 0; c < 2; ++c)
            for (int r = 0; r < 4; ++r) _mm256_store_pd(acc[c][r] + q, a[c][r]);
    }
    reduce_rows4(acc[0], tails4(wa, x, wide, d), out_a);
    reduce_rows4(acc[1], tails4(wb, x, wide, d), out_b);
#else
    dot4<T>(wa, x, d, out_a);
    dot4<T>(wb, x, d, out_b);
#endif
}

// axpy_rows<4> into two gradients, ga += sum_r ra[r] * x[r] and gb likewise, each to the bit,
// with each chunk of the four rows loaded once for both.
template <class T>
inline void axpy4x2(const double* ra, const double* rb, const T* const* x,
                    double* __restrict ga, double* __restrict gb, int64_t d) noexcept {
    int64_t j = 0;
#if defined(__AVX2__) && defined(__FMA__)
    __m256d va[4], vb[4];
    for (int r = 0; r < 4; ++r) {
        va[r] = _mm256_set1_pd(ra[r]);
        vb[r] = _mm256_set1_pd(rb[r]);
    }
    for (; j + 4 <= d; j += 4) {
        __m256d xv[4];
        for (int r = 0; r < 4; ++r) xv[r] = load4(x[r] + j);
        __m256d sa = _mm256_loadu_pd(ga + j), sb = _mm256_loadu_pd(gb + j);
        for (int r = 0; r < 4; ++r) {
            sa = _mm256_fmadd_pd(va[r], xv[r], sa);
            sb = _mm256_fmadd_pd(vb[r], xv[r], sb);
        }
        _mm256_storeu_pd(ga + j, sa);
        _mm256_storeu_pd(gb + j, sb);
    }
#endif
    for (; j < d; ++j) {
        double sa = ga[j], sb = gb[j];
        for (int r = 0; r < 4; ++r) {
            sa = madd(ra[r], double(x[r][j]), sa);
            sb = madd(rb[r], double(x[r][j]), sb);
        }
        ga[j] = sa;
        gb[j] = sb;
    }
}

// Dense X with one output (linear and logistic regression), the common case: the rows at
// positions [lo, hi) of `rows` read once, four at a time, for `count` parameter vectors w[i]
// (double, n_params each), each one's sums made as sum_dense_row_blocks_one_output makes them:
// the same operations in the same order as every row loop of row_loops.hpp, so the same bits.
// Four rows (standardised once into `xs`, 4 x d doubles, when `standardized`) stay in L1 while
// all the parameter vectors use them. Adds s_i * l_i into loss_sums[i] and, with `gradient`,
// the rows' gradient sums into grad[i] (not the intercept's: into intercept_grads[i]).
//
// Both alternatives measured slower (bench/README.md, M1): one configuration after another,
// the later ones reading the minibatch back from L2 (8 configurations: 268 ns a row on X in
// cache against 230 for this loop before dot4x2), and the rows one at a time for all of them
// with the updates deferred as sum_dense_rows_one_output defers them (W1: ~1.15x as long).
template <class T, bool standardized, bool gradient>
void many_dense_rows(const ModelSpec& s, const Dataset<T>& data, const double* const* w,
                     double* const* grad, int64_t count, const RowStream& rows, int64_t lo,
                     int64_t hi, double* xs, double* loss_sums, double* intercept_grads,
                     StopCheck& stop) noexcept {
    using Row = std::conditional_t<standardized, double, T>;  // what the sums read
    constexpr int64_t block = 4, poll_every = 512;  // logistic_loss4, axpy_rows<4>
    const int64_t d = s.n_features;
    const T* X = data.X;
    const double* y = data.y;
    const double* weights = data.sample_weight;
    const Model model = s.model == Model::logistic ? Model::logistic : Model::linear;
    const bool intercept = s.fit_intercept;
    const int64_t near = data.prefetch_rows,
                  far = data.prefetch_l2_rows > 0 ? data.prefetch_l2_rows : -1;
    const int64_t end = rows.size();
    auto request = [&](int64_t pos) {  // as batch_gradient: on into the next minibatches
        if (far >= 0 && pos + far < end) prefetch_row(X, rows.row(pos + far), d, true);
        if (near >= 0 && pos + near < end) prefetch_sample(data, rows.row(pos + near), d);
    };
    auto row_at = [&](int64_t r, int slot) -> const Row* {
        if constexpr (standardized) return standardize_row(data, X + r * d, d, xs + slot * d);
        else return X + r * d;
    };
    int64_t pos = lo;
    for (; pos + block <= hi; pos += block) {
        const Row* x[block];
        alignas(32) double labels[block], weight[block];
        int64_t at[block];
        for (int r = 0; r < block; ++r) {
            request(pos + r);
            at[r] = rows.row(pos + r);
            x[r] = row_at(at[r], r);
        }
        // The configurations two at a time (the rows' chunks loaded once for both), each
        // one's sums as for one.
        alignas(32) double score[2][block], rc[2][block];
#if defined(__AVX2__) && defined(__FMA__)
        // In vector registers, the four rows side by side: the same operations as below.
        const __m256d yv = _mm256_set_pd(y[at[3]], y[at[2]], y[at[1]], y[at[0]]);
        const __m256d wv = weights ? _mm256_set_pd(weights[at[3]], weights[at[2]],
                                                   weights[at[1]], weights[at[0]])
                                   : _mm256_set1_pd(1.0);
        _mm256_store_pd(labels, yv);
        _mm256_store_pd(weight, wv);
        auto sums = [&](int64_t i, const double* sc, double* r_c) {
            alignas(32) double f[block], loss[block];
            __m256d fv = _mm256_load_pd(sc), lv;
            if (intercept) fv = _mm256_add_pd(fv, _mm256_set1_pd(w[i][d]));
            if (model == Model::logistic) {
                _mm256_store_pd(f, fv);
                logistic_loss4(f, labels, loss);
                fv = _mm256_load_pd(f);
                lv = _mm256_load_pd(loss);
            } else {  // loss_and_residual: r = f - y, 0.5 * r * r
                fv = _mm256_sub_pd(fv, yv);
                lv = _mm256_mul_pd(_mm256_mul_pd(_mm256_set1_pd(0.5), fv), fv);
            }
            if constexpr (gradient) {
                _mm256_store_pd(r_c, _mm256_mul_pd(fv, wv));
                for (int r = 0; r < block; ++r) intercept_grads[i] += r_c[r];
            }
            _mm256_store_pd(loss, _mm256_mul_pd(wv, lv));
            for (int r = 0; r < block; ++r) loss_sums[i] += loss[r];
        };
#else
        for (int r = 0; r < block; ++r) {
            labels[r] = y[at[r]];
            weight[r] = weights ? weights[at[r]] : 1.0;
        }
        auto sums = [&](int64_t i, const double* sc, double* r_c) {
            double f[block], loss[block];
            for (int r = 0; r < block; ++r) f[r] = intercept ? sc[r] + w[i][d] : sc[r];
            if (model == Model::logistic) {
                logistic_loss4(f, labels, loss);
            } else {
                for (int r = 0; r < block; ++r)
                    loss[r] = loss_and_residual(model, &f[r], 1, labels[r]);
            }
            if constexpr (gradient) {
                for (int r = 0; r < block; ++r) r_c[r] = f[r] * weight[r];
                for (int r = 0; r < block; ++r) intercept_grads[i] += r_c[r];
            }
            for (int r = 0; r < block; ++r) loss_sums[i] += weight[r] * loss[r];
        };
#endif
        int64_t i = 0;
        for (; i + 2 <= count; i += 2) {
            dot4x2<Row>(w[i], w[i + 1], x, d, score[0], score[1]);
            sums(i, score[0], rc[0]);
            sums(i + 1, score[1], rc[1]);
            if constexpr (gradient) axpy4x2<Row>(rc[0], rc[1], x, grad[i], grad[i + 1], d);
        }
        if (i < count) {
            dot4<Row>(w[i], x, d, score[0]);
            sums(i, score[0], rc[0]);
            if constexpr (gradient) axpy_rows<block>(rc[0], x, grad[i], d);
        }
        if ((pos - lo + block) % poll_every == 0 &&
            tick(stop, poll_every * d * (gradient ? 3 : 1) * count))
            return;
    }
    for (; pos < hi; ++pos) {  // the last rows, one by one, into the same sums
        request(pos);
        const int64_t row = rows.row(pos);
        const Row* x = row_at(row, 0);
        const double weight = weights ? weights[row] : 1.0;
        for (int64_t i = 0; i < count; ++i) {
            const double score = dot<Row>(w[i], x, d);
            double f = intercept ? score + w[i][d] : score;
            const double loss = loss_and_residual(model, &f, 1, y[row]);
            if constexpr (gradient) {
                const double rc = f * weight;
                axpy<Row>(rc, x, grad[i], d);
                intercept_grads[i] += rc;
            }
            loss_sums[i] += weight * loss;
        }
    }
}

// many_dense_rows for standardised X or not.
template <class T, bool gradient>
void many_dense_sums(const ModelSpec& s, const Dataset<T>& data, const double* const* w,
                     double* const* grad, int64_t count, const RowStream& rows, int64_t lo,
                     int64_t hi, double* xs, double* loss_sums, double* intercept_grads,
                     StopCheck& stop) noexcept {
    if (data.mean != nullptr)
        many_dense_rows<T, true, gradient>(s, data, w, grad, count, rows, lo, hi, xs, loss_sums,
                                           intercept_grads, stop);
    else
        many_dense_rows<T, false, gradient>(s, data, w, grad, count, rows, lo, hi, xs,
                                            loss_sums, intercept_grads, stop);
}

// Minibatch `step` of every slot in `active` by many_dense_rows, then each one's update.
template <class T>
void many_dense_step(const Dataset<T>& data, ConfigSlot<T>* const* active, int64_t count,
                     const RowStream& rows, int64_t step, int64_t first, int64_t m, double* xs,
                     StopCheck& stop) noexcept {
    double loss_sums[max_many_group], intercept_grads[max_many_group];
    const double* w[max_many_group];
    double* grad[max_many_group];
    const ModelSpec& s = active[0]->spec;
    const int64_t p = n_params(s), d = s.n_features;
    for (int64_t g = 0; g < count; g += max_many_group) {
        const int64_t size = std::min(max_many_group, count - g);
        for (int64_t i = 0; i < size; ++i) {
            w[i] = active[g + i]->ws.params;
            grad[i] = active[g + i]->ws.grad;
            for (int64_t j = 0; j < p; ++j) grad[i][j] = 0.0;
            loss_sums[i] = intercept_grads[i] = 0.0;
        }
        many_dense_sums<T, true>(s, data, w, grad, size, rows, first, first + m, xs, loss_sums,
                                 intercept_grads, stop);
        if (stop.stopped || tick(stop, m * d * 3 * size)) return;  // ~ multiply-adds
        for (int64_t i = 0; i < size; ++i) {
            ConfigSlot<T>& c = *active[g + i];
            // grad[d] came in as zero, so this is the same sum as adding rc row by row.
            if (c.spec.fit_intercept) c.ws.grad[d] += intercept_grads[i];
            const bool finite = finish_gradient(c.spec, data, c.ws.params, c.ws.grad,
                                                c.ws.residual_sum, m);
            many_apply(c, BatchSums{loss_sums[i], finite}, step, m);
        }
    }
}

// The full objective L(w_i) over all rows, in order, of `count` parameter vectors w[i] of
// dense one-output X (its spec `s`), in one pass: objective() of each to rounding (the rows in
// order, where objective() sums blocks of rows; the same bits below one block). `params`:
// count x n_params doubles of scratch, `xs`: 4 x d. Returns false when `stop` fired.
template <class T>
bool many_objective(const ModelSpec& s, const Dataset<T>& data, const T* const* w,
                    int64_t count, double* params, double* xs, double* out,
                    StopCheck& stop) noexcept {
    const int64_t p = n_params(s);
    const RowStream rows(nullptr, data.n);
    double loss_sums[max_objective_group];
    const double* wd[max_objective_group];
    for (int64_t g = 0; g < count; g += max_objective_group) {
        const int64_t size = std::min(max_objective_group, count - g);
        for (int64_t i = 0; i < size; ++i) {
            load_params(w[g + i], params + i * p, p);
            wd[i] = params + i * p;
            loss_sums[i] = 0.0;
        }
        many_dense_sums<T, false>(s, data, wd, nullptr, size, rows, 0, data.n, xs, loss_sums,
                                  nullptr, stop);
        if (stop.stopped) return false;
        for (int64_t i = 0; i < size; ++i)
            out[g + i] = loss_sums[i] / double(data.n) + penalty_value(s, wd[i]);
    }
    return true;
}

// Minibatch `step` of one slot by batch_gradient, then its update: sparse X, softmax, and a
// configuration left alone.
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
    for (int64_t i = 0; i < count; ++i) {
        ConfigSlot<T>& c = slots[i];
        c.out = EpochOutcome{};
        if (!c.active) continue;
        if constexpr (std::is_same_v<T, double>) c.ws.params = c.w;
        else load_params(c.w, c.ws.params, n_params(c.spec));
    }
    bool together = !is_sparse(data) && slots[0].spec.n_outputs == 1;
    std::vector<ConfigSlot<T>*> active;
    std::vector<double> xs;  // four standardised rows
    try {
        active.reserve(size_t(count));
        xs.resize(size_t(4 * slots[0].spec.n_features));
    } catch (...) {  // out of memory: one configuration after another, as below
        together = false;
    }
    for (int64_t step = 0; step < steps; ++step) {
        const int64_t first = step * batch;
        const int64_t m = std::min(batch, n - first);
        if (together) {
            active.clear();
            for (int64_t i = 0; i < count; ++i)
                if (slots[i].active) active.push_back(&slots[i]);
            if (active.empty()) break;  // every configuration failed
            // One configuration alone: the single-configuration loop, which keeps more rows
            // in flight (four rows at a time made W1 ~1.4x slower, row_loops.hpp).
            if (active.size() == 1) many_update(*active[0], data, rows, step, first, m, stop);
            else many_dense_step(data, active.data(), int64_t(active.size()), rows, step, first,
                                 m, xs.data(), stop);
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
