// Full passes over all rows for the full-batch solvers (L-BFGS, Newton-CG): the objective with
// its gradient, and Hessian-vector products.
//
// The rows are cut into blocks of objective_block_rows() rows, a size that depends on the data
// and never on the thread count. Each block's loss and gradient are summed from zero on their
// own and kept; threads take blocks as they come free, and once all are done the partial sums
// are added in block order, so the result is the same to the bit for any number of threads
// (one included: it runs the same blocks). References: fastopt/reference/models.py
// (objective), fastopt/reference/hvp.py (Hessian-vector products).
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <thread>
#include <type_traits>
#include <vector>

#include "fastopt/config.hpp"
#include "fastopt/logistic_math.hpp"
#include "fastopt/row_sums.hpp"
#include "fastopt/rows.hpp"
#include "fastopt/simd.hpp"

#ifndef FASTOPT_ISA
#define FASTOPT_ISA baseline
#endif

namespace fastopt {
namespace FASTOPT_ISA {

// Rows per block: at least 2048, and enough that a block's multiply-adds (about
// 2 k entries a row) outnumber the 2 p it costs to clear and add its partial gradient ~64 to 1
// (sparse X with many columns). `entries`: stored entries of X (n d when dense).
// fastopt/_backends/numba_jit.py (_block_rows) computes the same number.
inline int64_t objective_block_rows(int64_t n, int64_t p, int64_t k, int64_t entries) noexcept {
    const int64_t per_row = std::max<int64_t>(1, (entries + n - 1) / std::max<int64_t>(n, 1));
    const int64_t rows = (64 * p + k * per_row - 1) / (k * per_row);
    return std::max<int64_t>(2048, rows);
}

template <class T>
inline int64_t stored_entries(const Dataset<T>& data, int64_t d) noexcept {
    if (!is_sparse(data)) return data.n * d;
    return data.csr.indptr64 ? data.csr.indptr64[data.n] : int64_t(data.csr.indptr32[data.n]);
}

// The memory of a full pass, in doubles, carved by the kernels below and allocated by the
// caller (bindings/bind_training.cpp), where a failure is a MemoryError:
//   per block:  its partial sums, `reduce` = p + k doubles (gradient, residual sums), and loss;
//   per thread: the sums of the block at hand (reduce; copied to the block's when it is done,
//               so that no two threads write one cache line), two rows' scores (2 k) and
//               standardised rows (as Workspace::row, and at least two);
//   the totals: p + k.
// Blocks keep their partial sums until every block is done, and the caller adds them in block
// order: no thread ever waits for another (on a busy machine a waiting thread was a thread
// descheduled). At most ~k nnz / 64 doubles for the partials (objective_block_rows).
// Each thread's parts start on a 64-byte boundary (the caller's memory does too): with d a
// multiple of 4, no 32-byte load or store of the partial gradient or the standardised rows
// straddles two cache lines (softmax, 5 classes, 300,000 x 100: the pass 126 -> 115 ns a row,
// 131 -> 114 with X in cache; the same bits).
inline int64_t cache_lines(int64_t doubles) noexcept { return (doubles + 7) / 8 * 8; }

struct PassLayout {
    int64_t blocks, block, reduce, lane, scores;

    int64_t lanes_start() const noexcept { return cache_lines(blocks * (reduce + 1)); }
    int64_t doubles(int64_t lanes) const noexcept {
        return lanes_start() + lanes * lane + reduce;
    }
};

// A thread's lane: its block's sums (reduce), then the scratch handed to the body: two rows'
// scores (2 k), then standardised rows at `scores` doubles from its start.
inline PassLayout pass_layout(const ModelSpec& s, int64_t n, int64_t entries) noexcept {
    const int64_t p = n_params(s), k = s.n_outputs;
    const int64_t block = objective_block_rows(n, p, k, entries);
    const int64_t rows = std::max<int64_t>(2, standardized_rows(s.n_features)) * s.n_features;
    return {(n + block - 1) / block, block, p + k,
            cache_lines(p + k) + cache_lines(2 * k) + cache_lines(rows), cache_lines(2 * k)};
}

// Rows [0, n) in blocks: block b by body(lo, hi, sums, lane, stop) -> loss, where `sums`
// (layout.reduce doubles, cleared first) receives its sums and `lane` is the thread's scratch,
// on `lanes` threads (the caller's among them; the others are started here, and where none can
// be, the caller does all). Then the partials are added into `total` and the losses into `loss`
// in block order. Only the caller's thread polls `stop`; when it stops, the others take no
// further block. Returns false when stopped.
template <class Body>
bool ordered_blocks(int64_t n, const PassLayout& layout, int64_t lanes, double* memory,
                    double*& total, double& loss, StopCheck& stop,
                    Body&& body) noexcept {
    const int64_t blocks = layout.blocks, reduce = layout.reduce;
    double* partials = memory;
    double* losses = partials + blocks * reduce;
    double* lane_memory = memory + layout.lanes_start();
    total = lane_memory + lanes * layout.lane;
    if (blocks == 1) {
        // One block (sparse X with many columns: objective_block_rows): its sums are the
        // total, the same bits as 0 + partial, without two more passes over the p sums.
        for (int64_t j = 0; j < reduce; ++j) total[j] = 0.0;
        loss = body(0, n, total, lane_memory + cache_lines(reduce), &stop);
        return !stop.stopped;
    }
    std::atomic<int64_t> next{0};
    std::atomic<bool> quit{false};
    auto work = [&](int64_t t) {
        double* sums = lane_memory + t * layout.lane;
        double* lane = sums + cache_lines(reduce);
        StopCheck* poll = t == 0 ? &stop : nullptr;
        for (int64_t b; !quit.load(std::memory_order_relaxed) &&
                        (b = next.fetch_add(1, std::memory_order_relaxed)) < blocks;) {
            for (int64_t j = 0; j < reduce; ++j) sums[j] = 0.0;
            const int64_t lo = b * layout.block, hi = std::min(n, lo + layout.block);
            losses[b] = body(lo, hi, sums, lane, poll);
            std::copy(sums, sums + reduce, partials + b * reduce);
            if (poll && poll->stopped) quit.store(true, std::memory_order_relaxed);
        }
    };
    std::vector<std::thread> team;
    try {
        team.reserve(size_t(std::max<int64_t>(lanes - 1, 0)));
        for (int64_t t = 1; t < lanes; ++t) team.emplace_back(work, t);
    } catch (...) {  // no (more) threads to be had: those started and the caller share the rest
    }
    work(0);
    for (auto& th : team) th.join();
    if (stop.stopped) return false;
    for (int64_t j = 0; j < reduce; ++j) total[j] = 0.0;
    loss = 0.0;
    for (int64_t b = 0; b < blocks; ++b) {
        const double* partial = partials + b * reduce;
        for (int64_t j = 0; j < reduce; ++j) total[j] += partial[j];
        loss += losses[b];
    }
    return true;
}

// Several outputs of dense X (softmax), rows two at a time: the scores of R rows for G outputs
// in one sweep of the rows, each x loaded once for the G rows of W and each W row once for the
// R rows of X, R x G accumulators in registers. One output at a time (accumulate_row) loaded
// x and w for every multiply-add and ran ~3x the read of X on a 5-class problem; this is the
// load count of a small matrix product. Each score is four lanes (j mod 4) summed as
// (l0 + l2) + (l1 + l3), plus the tail j >= d - d % 4 in order (Numba: _dots, the same).
//
// `ahead` (or null): R rows further on, requested one cache line per step of four elements
// (R * 4 * sizeof(T) bytes), spread over the sweep: the 13 requests of a 100-column row issued
// at once, a row at a time, stalled the loop (5 classes, 300,000 x 100, a standalone loop of
// the objective: 100 -> 93 ns a row; the Hessian-vector product, which requested nothing:
// 139 -> 93).
template <int R, int G, class T>
inline void output_dots(const double* __restrict w, int64_t d, const T* const* x,
                        double (*out)[8], const char* ahead = nullptr) noexcept {
    int64_t j = 0;
    constexpr int64_t step_bytes = R * 4 * int64_t(sizeof(T));
#if defined(__AVX2__) && defined(__FMA__)
    __m256d acc[R][G];
    for (int r = 0; r < R; ++r)
        for (int g = 0; g < G; ++g) acc[r][g] = _mm256_setzero_pd();
    for (; j + 4 <= d; j += 4) {
        if (ahead) FASTOPT_PREFETCH(ahead + j / 4 * step_bytes, 0, 3);
        __m256d row[R];
        for (int r = 0; r < R; ++r) row[r] = load4(x[r] + j);
        for (int g = 0; g < G; ++g) {
            __m256d wg = _mm256_loadu_pd(w + g * d + j);
            // Opaque to the compiler, so wg stays in a register: GCC folded the load into each
            // row's multiply-add, 12 loads where 7 do (dots of 2 rows x 5 outputs with X in
            // cache: 28.3 -> 24.5 ns a row).
#if defined(__GNUC__)
            if (R > 1) __asm__("" : "+x"(wg));
#endif
            for (int r = 0; r < R; ++r) acc[r][g] = _mm256_fmadd_pd(wg, row[r], acc[r][g]);
        }
    }
    for (int r = 0; r < R; ++r)
        for (int g = 0; g < G; ++g) {
            const __m128d half = _mm_add_pd(_mm256_castpd256_pd128(acc[r][g]),
                                            _mm256_extractf128_pd(acc[r][g], 1));
            out[r][g] = _mm_cvtsd_f64(half) + _mm_cvtsd_f64(_mm_unpackhi_pd(half, half));
        }
#else
    double acc[R][G][4] = {};
    for (; j + 4 <= d; j += 4) {
        if (ahead) FASTOPT_PREFETCH(ahead + j / 4 * step_bytes, 0, 3);
        for (int g = 0; g < G; ++g)
            for (int r = 0; r < R; ++r)
                for (int l = 0; l < 4; ++l)
                    acc[r][g][l] = madd(w[g * d + j + l], double(x[r][j + l]), acc[r][g][l]);
    }
    for (int r = 0; r < R; ++r)
        for (int g = 0; g < G; ++g)
            out[r][g] = (acc[r][g][0] + acc[r][g][2]) + (acc[r][g][1] + acc[r][g][3]);
#endif
    for (int r = 0; r < R; ++r)
        for (int g = 0; g < G; ++g) {
            double tail = 0.0;
            for (int64_t t = j; t < d; ++t) tail = madd(w[g * d + t], double(x[r][t]), tail);
            out[r][g] = out[r][g] + tail;
        }
}

// g_c += a[0][c] x[0] + ... + a[R-1][c] x[R-1] for the G outputs c, row after row for each
// element: the bits of R x G calls of axpy, with each x loaded once per element.
template <int R, int G, class T>
inline void output_axpys(double (*a)[8], const T* const* x, double* __restrict g,
                         int64_t d) noexcept {
    int64_t j = 0;
#if defined(__AVX2__) && defined(__FMA__)
    __m256d av[R][G];
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < G; ++c) av[r][c] = _mm256_set1_pd(a[r][c]);
    for (; j + 4 <= d; j += 4) {
        __m256d row[R];
        for (int r = 0; r < R; ++r) row[r] = load4(x[r] + j);
        for (int c = 0; c < G; ++c) {
            __m256d sum = _mm256_loadu_pd(g + c * d + j);
            for (int r = 0; r < R; ++r) sum = _mm256_fmadd_pd(av[r][c], row[r], sum);
            _mm256_storeu_pd(g + c * d + j, sum);
        }
    }
#endif
    for (; j < d; ++j)
        for (int c = 0; c < G; ++c) {
            double sum = g[c * d + j];
            for (int r = 0; r < R; ++r) sum = madd(a[r][c], double(x[r][j]), sum);
            g[c * d + j] = sum;
        }
}

// Outputs [c0, c0 + G) of R rows, G <= 5 (R x G accumulators and the rows fit the 16 vector
// registers of AVX2 for R = 2), for `dots` (true) or `axpys`.
template <int R, class T>
inline void output_group(bool dots, int64_t G, const double* w, double* g, int64_t d,
                         const T* const* x, double (*a)[8],
                         const char* ahead = nullptr) noexcept {
    if (dots) {
        switch (G) {
            case 1: return output_dots<R, 1>(w, d, x, a, ahead);
            case 2: return output_dots<R, 2>(w, d, x, a, ahead);
            case 3: return output_dots<R, 3>(w, d, x, a, ahead);
            case 4: return output_dots<R, 4>(w, d, x, a, ahead);
            default: return output_dots<R, 5>(w, d, x, a, ahead);
        }
    }
    switch (G) {
        case 1: return output_axpys<R, 1>(a, x, g, d);
        case 2: return output_axpys<R, 2>(a, x, g, d);
        case 3: return output_axpys<R, 3>(a, x, g, d);
        case 4: return output_axpys<R, 4>(a, x, g, d);
        default: return output_axpys<R, 5>(a, x, g, d);
    }
}

// The rows `pos + data.prefetch_rows` on of dense X, for output_dots to request, with their
// labels and weights requested here; null where those two rows are past the end or
// prefetching is off.
template <class T>
inline const char* rows_ahead(const Dataset<T>& data, int64_t pos, int64_t d) noexcept {
    const int64_t at = pos + data.prefetch_rows;
    if (data.prefetch_rows <= 0 || at + 1 >= data.n) return nullptr;
    prefetch_labels(data, at);
    return reinterpret_cast<const char*>(data.X + at * d);
}

// exp_nonpositive of four values in place: the AVX2 build runs them side by side with the same
// operations in the same order (those of logistic_loss4's exp), so the bits are the scalar's.
inline void exp_nonpositive4(double* v) noexcept {
#if defined(__AVX2__) && defined(__FMA__)
    using namespace logistic_math;
    auto c = [](double x) { return _mm256_set1_pd(x); };
    auto pair = [&](const double* coef, __m256d x) {
        return _mm256_add_pd(c(coef[0]), _mm256_mul_pd(c(coef[1]), x));
    };
    __m256d x = _mm256_loadu_pd(v);
    x = _mm256_blendv_pd(x, c(lowest), _mm256_cmp_pd(x, c(lowest), _CMP_LT_OQ));
    const __m256d t = _mm256_add_pd(_mm256_mul_pd(x, c(inv_ln2)), c(shifter));
    const __m256d k = _mm256_sub_pd(t, c(shifter));
    const __m256d r =
        _mm256_sub_pd(_mm256_sub_pd(x, _mm256_mul_pd(k, c(ln2_hi))), _mm256_mul_pd(k, c(ln2_lo)));
    const __m256d r2 = _mm256_mul_pd(r, r), r4 = _mm256_mul_pd(r2, r2),
                  r8 = _mm256_mul_pd(r4, r4);
    const __m256d s0 = _mm256_add_pd(r, _mm256_mul_pd(pair(exp_c + 2, r), r2));
    const __m256d s1 = _mm256_add_pd(pair(exp_c + 4, r), _mm256_mul_pd(pair(exp_c + 6, r), r2));
    const __m256d s2 = _mm256_add_pd(pair(exp_c + 8, r), _mm256_mul_pd(pair(exp_c + 10, r), r2));
    const __m256d s3 = pair(exp_c + 12, r);
    const __m256d p = _mm256_add_pd(
        c(exp_c[0]), _mm256_add_pd(_mm256_add_pd(s0, _mm256_mul_pd(s1, r4)),
                                   _mm256_mul_pd(_mm256_add_pd(s2, _mm256_mul_pd(s3, r4)), r8)));
    const __m256i scale_bits = _mm256_slli_epi64(
        _mm256_add_epi64(_mm256_sub_epi64(_mm256_castpd_si256(t),
                                          _mm256_set1_epi64x(int64_t(shifter_bits))),
                         _mm256_set1_epi64x(2023)),
        52);
    _mm256_storeu_pd(v, _mm256_mul_pd(_mm256_mul_pd(p, _mm256_castsi256_pd(scale_bits)),
                                      c(two_pow_minus_1000)));
#else
    for (int i = 0; i < 4; ++i) v[i] = exp_nonpositive(v[i]);
#endif
}

// Softmax losses and residuals of `rows` rows of scores f (k each, labels y), as
// loss_and_residual computes them but with exp_nonpositive (every f_c - max f is <= 0): the
// exps of all the rows in one loop the compiler vectorizes, where std::exp was a library call
// each (with std::log, a quarter of the pass on a 5-class problem). Losses into `loss`. The
// running maximum is a local select (maxsd), not a store into an array that the compiler made
// a branch; the divisions go four at a time (each quotient rounded once, as the scalar's).
// Together: 124 -> 118 ns a row on 300,000 x 100, 5 classes (112 -> 104 with X in cache).
inline void softmax_losses(double* __restrict f, int64_t rows, int64_t k, const double* y,
                           double* loss) noexcept {
    double top[2], f_label[2];
    for (int64_t r = 0; r < rows; ++r) {
        double* fr = f + r * k;
        double highest = fr[0];
        for (int64_t c = 1; c < k; ++c) highest = fr[c] > highest ? fr[c] : highest;
        top[r] = highest;
        f_label[r] = fr[static_cast<int64_t>(y[r])];
        for (int64_t c = 0; c < k; ++c) fr[c] = fr[c] - highest;
    }
    int64_t i = 0;
    for (; i + 4 <= rows * k; i += 4) exp_nonpositive4(f + i);
    for (; i < rows * k; ++i) f[i] = exp_nonpositive(f[i]);
    for (int64_t r = 0; r < rows; ++r) {
        double* fr = f + r * k;
        double total = 0.0;
        for (int64_t c = 0; c < k; ++c) total += fr[c];
        loss[r] = (top[r] + std::log(total)) - f_label[r];
        int64_t c = 0;
#if defined(__AVX2__) && defined(__FMA__)
        const __m256d divisor = _mm256_set1_pd(total);
        for (; c + 4 <= k; c += 4)
            _mm256_storeu_pd(fr + c, _mm256_div_pd(_mm256_loadu_pd(fr + c), divisor));
#endif
        for (; c < k; ++c) fr[c] = fr[c] / total;
        fr[static_cast<int64_t>(y[r])] -= 1.0;
    }
}

// sum_rows for dense X with several outputs (softmax) on rows [lo, hi) in order: the scores of
// two rows at a time by output_dots (groups of up to five outputs), their losses and residuals
// by softmax_losses, the gradient by output_axpys. `row` holds two standardised rows. Returns
// the sum of s_i l_i. Numba: _dense_rows_outputs.
template <class T>
double sum_dense_rows_outputs(const ModelSpec& s, const Dataset<T>& data, int64_t lo, int64_t hi,
                              const double* w, double* __restrict grad, double* f,
                              double* row, StopCheck* stop) noexcept {
    constexpr int64_t poll_every = 512;
    const int64_t d = s.n_features, k = s.n_outputs;
    const bool standardize = data.mean != nullptr;
    double loss_sum = 0.0;
    for (int64_t pos = lo; pos < hi; pos += 2) {
        const int64_t rows = std::min<int64_t>(2, hi - pos);
        // The pair prefetch_rows ahead on its way, during the first group's dots (4 rows: 113
        // ns a row on 300,000 x 100 with 5 classes, 8 rows: 119, 12: 124, when each row was
        // requested at once).
        const char* ahead = rows_ahead(data, pos, d);
        const T* xt[2] = {data.X + pos * d, data.X + (pos + rows - 1) * d};
        const double* xd[2] = {nullptr, nullptr};
        if (standardize)
            for (int64_t r = 0; r < rows; ++r) xd[r] = standardize_row(data, xt[r], d, row + r * d);
        double a[2][8];
        for (int64_t c0 = 0; c0 < k; c0 += 5) {
            const int64_t G = std::min<int64_t>(5, k - c0);
            const char* request = c0 == 0 ? ahead : nullptr;
            if (standardize) {
                if (rows == 2) output_group<2>(true, G, w + c0 * d, nullptr, d, xd, a, request);
                else output_group<1>(true, G, w + c0 * d, nullptr, d, xd, a, request);
            } else {
                if (rows == 2) output_group<2>(true, G, w + c0 * d, nullptr, d, xt, a, request);
                else output_group<1>(true, G, w + c0 * d, nullptr, d, xt, a, request);
            }
            for (int64_t r = 0; r < rows; ++r)
                for (int64_t c = 0; c < G; ++c) f[r * k + c0 + c] = a[r][c];
        }
        double residual[2][8], loss[2];
        if (s.fit_intercept)
            for (int64_t r = 0; r < rows; ++r)
                for (int64_t c = 0; c < k; ++c) f[r * k + c] = f[r * k + c] + w[k * d + c];
        softmax_losses(f, rows, k, data.y + pos, loss);
        for (int64_t r = 0; r < rows; ++r) {
            const double weight = data.sample_weight ? data.sample_weight[pos + r] : 1.0;
            for (int64_t c = 0; c < k; ++c) f[r * k + c] = f[r * k + c] * weight;
            loss_sum += weight * loss[r];
        }
        for (int64_t c0 = 0; c0 < k; c0 += 5) {
            const int64_t G = std::min<int64_t>(5, k - c0);
            for (int64_t r = 0; r < rows; ++r)
                for (int64_t c = 0; c < G; ++c) residual[r][c] = f[r * k + c0 + c];
            if (standardize) {
                if (rows == 2) output_group<2>(false, G, nullptr, grad + c0 * d, d, xd, residual);
                else output_group<1>(false, G, nullptr, grad + c0 * d, d, xd, residual);
            } else {
                if (rows == 2) output_group<2>(false, G, nullptr, grad + c0 * d, d, xt, residual);
                else output_group<1>(false, G, nullptr, grad + c0 * d, d, xt, residual);
            }
        }
        if (s.fit_intercept)
            for (int64_t r = 0; r < rows; ++r)
                for (int64_t c = 0; c < k; ++c) grad[k * d + c] += f[r * k + c];
        if (stop && (pos - lo + 2) % poll_every == 0 && tick(*stop, poll_every * d * (2 * k + 1)))
            return loss_sum;
    }
    return loss_sum;
}

// The full objective L(w) over all rows and its gradient, into ws.grad (ws.params: w as
// double), on `lanes` threads; `memory`: pass_layout(...).doubles(lanes) doubles.
template <class T>
double full_objective(const ModelSpec& s, const Dataset<T>& data, const T* w, Workspace<T>& ws,
                      double* memory, int64_t lanes, StopCheck& stop) noexcept {
    const int64_t p = n_params(s), k = s.n_outputs, n = data.n;
    const PassLayout layout = pass_layout(s, n, stored_entries(data, s.n_features));
    for (int64_t j = 0; j < p; ++j) ws.params[j] = double(w[j]);
    sparse_centering(s, data, ws.params, ws.center);
    const RowStream rows(nullptr, n);
    double* total;
    double loss_sum;
    // The residual sums follow the gradient in each block's partial sums.
    const bool done = ordered_blocks(
        n, layout, lanes, memory, total, loss_sum, stop,
        [&](int64_t lo, int64_t hi, double* partial, double* lane, StopCheck* poll) {
            double *grad = partial, *rsum = partial + p, *f = lane, *row = lane + layout.scores;
            if (!is_sparse(data) && k > 1)
                return sum_dense_rows_outputs(s, data, lo, hi, ws.params, grad, f, row, poll);
            return is_sparse(data)
                       ? sum_rows<T, true>(s, data, rows, lo, hi, hi, n, ws.params, grad, f, row,
                                           ws.center, rsum, poll)
                       : sum_rows<T, false>(s, data, rows, lo, hi, hi, n, ws.params, grad, f,
                                            row, ws.center, rsum, poll);
        });
    if (!done) return 0.0;
    std::copy(total, total + p, ws.grad);
    finish_gradient(s, data, ws.params, ws.grad, total + p, n);
    return loss_sum / double(n) + penalty_value(s, ws.params);
}

// The scores x~ . W_c (+ b_c) of row r into f; for dense X returns the row as the sums read it
// (its standardised copy in `row` when standardising), null for sparse X. Its callers read the
// rows in order: one output requests X's bytes ahead (stream_ahead).
template <class T>
inline const void* row_scores(const ModelSpec& s, const Dataset<T>& data, int64_t r,
                              const double* w, bool intercept, const double* center, double* f,
                              double* row) noexcept {
    const int64_t d = s.n_features, k = s.n_outputs;
    if (is_sparse(data)) {
        const bool standardize = data.mean != nullptr;
        int64_t begin, end;
        sparse_row_range(data, r, begin, end);
        for (int64_t c = 0; c < k; ++c) {
            double score = 0.0;
            for (int64_t e = begin; e < end; ++e) {
                const int64_t j = sparse_column(data, e);
                const double x = standardize ? double(data.csr.values[e]) * data.inv_std[j]
                                             : double(data.csr.values[e]);
                score = madd(w[c * d + j], x, score);
            }
            if (standardize) score = score - center[c];
            f[c] = intercept ? score + w[k * d + c] : score;
        }
        return nullptr;
    }
    const T* x = data.X + r * d;
    const double* xs = standardize_row(data, x, d, row);
    if (k > 1) {  // as sum_dense_rows_outputs (one row): the outputs share each load of x
        double a[1][8];
        for (int64_t c0 = 0; c0 < k; c0 += 5) {
            const int64_t G = std::min<int64_t>(5, k - c0);
            if (xs) output_group<1>(true, G, w + c0 * d, nullptr, d, &xs, a);
            else output_group<1>(true, G, w + c0 * d, nullptr, d, &x, a);
            for (int64_t c = 0; c < G; ++c)
                f[c0 + c] = intercept ? a[0][c] + w[k * d + c0 + c] : a[0][c];
        }
    } else {
        const char* ahead = stream_ahead(data, r, d);
        const double score = xs ? dot<double>(w, xs, d, ahead) : dot<T>(w, x, d, ahead);
        f[0] = intercept ? score + w[d] : score;
    }
    return xs ? static_cast<const void*>(xs) : static_cast<const void*>(x);
}

// g_c += a_c x for the k outputs of one dense row (output_axpys; the bits of k axpy calls).
template <class Row>
inline void output_updates(const double* a, const Row* x, double* grad, int64_t k,
                           int64_t d) noexcept {
    double group[1][8];
    for (int64_t c0 = 0; c0 < k; c0 += 5) {
        const int64_t G = std::min<int64_t>(5, k - c0);
        for (int64_t c = 0; c < G; ++c) group[0][c] = a[c0 + c];
        output_group<1>(false, G, nullptr, grad + c0 * d, d, &x, group);
    }
}

// Values per row that Hessian-vector products at w keep: 0 (linear: the curvature is the
// sample weight), 1 (logistic: s_i p_i (1 - p_i)), k (softmax: the probabilities p_i).
inline int64_t curvature_width(const ModelSpec& s) noexcept {
    return s.model == Model::linear ? 0 : s.model == Model::logistic ? 1 : s.n_outputs;
}

// The curvature of every row at w (curvature_width(s) values a row) into `curvature`: one pass
// over X, blocks shared among `lanes` threads (no sums: nothing to reduce); `memory` as for
// full_objective.
template <class T>
bool hessian_curvature(const ModelSpec& s, const Dataset<T>& data, const T* w, double* params,
                       double* center, double* curvature, double* memory, int64_t lanes,
                       StopCheck& stop) noexcept {
    const int64_t p = n_params(s), k = s.n_outputs, n = data.n;
    const int64_t width = curvature_width(s);
    if (width == 0) return true;
    for (int64_t j = 0; j < p; ++j) params[j] = double(w[j]);
    sparse_centering(s, data, params, center);
    const PassLayout layout = pass_layout(s, n, stored_entries(data, s.n_features));
    double* total;
    double unused;
    return ordered_blocks(
        n, layout, lanes, memory, total, unused, stop,
        [&](int64_t lo, int64_t hi, double*, double* lane, StopCheck* poll) {
            double *f = lane, *row = lane + layout.scores;
            for (int64_t r = lo; r < hi; ++r) {
                row_scores(s, data, r, params, s.fit_intercept, center, f, row);
                double* out = curvature + r * width;
                const double weight = data.sample_weight ? data.sample_weight[r] : 1.0;
                if (s.model == Model::logistic) {
                    const double e = std::exp(-std::fabs(f[0]));
                    const double prob = f[0] >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
                    out[0] = weight * (prob * (1.0 - prob));
                } else {
                    double top = f[0], total = 0.0;
                    for (int64_t c = 1; c < k; ++c) top = std::max(top, f[c]);
                    for (int64_t c = 0; c < k; ++c) {
                        out[c] = std::exp(f[c] - top);
                        total += out[c];
                    }
                    for (int64_t c = 0; c < k; ++c) out[c] = out[c] / total;
                }
                if (poll && (r - lo + 1) % 512 == 0 && tick(*poll, 512 * s.n_features * k))
                    return 0.0;
            }
            return 0.0;
        });
}

// hessian_product's rows [lo, hi) for dense X with several outputs (softmax), two at a time
// as sum_dense_rows_outputs: every score and every element of the sums is added in the order
// of the row-at-a-time loop (Numba's _hessian_product), so the bits are the same.
template <class T>
void product_rows_outputs(const ModelSpec& s, const Dataset<T>& data, const double* curvature,
                          const double* v, int64_t lo, int64_t hi, double* __restrict grad,
                          double* rsum, double* f, double* row, StopCheck* poll) noexcept {
    constexpr int64_t poll_every = 512;
    const int64_t k = s.n_outputs, d = s.n_features;
    const bool standardize = data.mean != nullptr;
    for (int64_t pos = lo; pos < hi; pos += 2) {
        const int64_t rows = std::min<int64_t>(2, hi - pos);
        const T* xt[2] = {data.X + pos * d, data.X + (pos + rows - 1) * d};
        const double* xd[2] = {nullptr, nullptr};
        if (standardize)
            for (int64_t r = 0; r < rows; ++r) xd[r] = standardize_row(data, xt[r], d, row + r * d);
        const char* ahead = rows_ahead(data, pos, d);  // as sum_dense_rows_outputs
        auto group = [&](bool dots, int64_t c0, double (*a)[8]) {
            const int64_t G = std::min<int64_t>(5, k - c0);
            const double* w = dots ? v + c0 * d : nullptr;
            double* g = dots ? nullptr : grad + c0 * d;
            const char* request = dots && c0 == 0 ? ahead : nullptr;
            if (standardize) {
                if (rows == 2) output_group<2>(dots, G, w, g, d, xd, a, request);
                else output_group<1>(dots, G, w, g, d, xd, a, request);
            } else {
                if (rows == 2) output_group<2>(dots, G, w, g, d, xt, a, request);
                else output_group<1>(dots, G, w, g, d, xt, a, request);
            }
            return G;
        };
        double a[2][8];
        for (int64_t c0 = 0; c0 < k; c0 += 5) {
            const int64_t G = group(true, c0, a);
            for (int64_t r = 0; r < rows; ++r)
                for (int64_t c = 0; c < G; ++c)
                    f[r * k + c0 + c] =
                        s.fit_intercept ? a[r][c] + v[k * d + c0 + c] : a[r][c];
        }
        for (int64_t r = 0; r < rows; ++r) {
            const double weight = data.sample_weight ? data.sample_weight[pos + r] : 1.0;
            const double* prob = curvature + (pos + r) * k;
            double* fr = f + r * k;
            double mixed = 0.0;
            for (int64_t c = 0; c < k; ++c) mixed += prob[c] * fr[c];
            for (int64_t c = 0; c < k; ++c) fr[c] = weight * (prob[c] * (fr[c] - mixed));
        }
        for (int64_t c0 = 0; c0 < k; c0 += 5) {
            for (int64_t r = 0; r < rows; ++r)
                for (int64_t c = 0; c < std::min<int64_t>(5, k - c0); ++c)
                    a[r][c] = f[r * k + c0 + c];
            group(false, c0, a);
        }
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < k; ++c) {
                if (s.fit_intercept) grad[k * d + c] += f[r * k + c];
                rsum[c] += f[r * k + c];
            }
        if (poll && (pos - lo + 2) % poll_every == 0 && tick(*poll, poll_every * d * 2 * k))
            return;
    }
}

// H v at the point whose curvature hessian_curvature() left in `curvature`, into `out`
// (n_params(s) values): dF_i = x~_i V^T + c, D_i = curvature applied to dF_i, then
// H v = [D^T X~ / n + alpha V (l2), sum_i D_i / n]. One pass over X in blocks, as
// full_objective (and with its `memory`).
template <class T>
bool hessian_product(const ModelSpec& s, const Dataset<T>& data, const double* curvature,
                     const double* v, double* out, double* center, double* memory,
                     int64_t lanes, StopCheck& stop) noexcept {
    const int64_t p = n_params(s), k = s.n_outputs, d = s.n_features, n = data.n;
    const int64_t width = curvature_width(s);
    const bool sparse = is_sparse(data), standardize = data.mean != nullptr;
    const PassLayout layout = pass_layout(s, n, stored_entries(data, d));
    sparse_centering(s, data, v, center);
    double* total;
    double unused;
    const bool done = ordered_blocks(
        n, layout, lanes, memory, total, unused, stop,
        [&](int64_t lo, int64_t hi, double* partial, double* lane, StopCheck* poll) {
            double *grad = partial, *rsum = partial + p, *f = lane, *row = lane + layout.scores;
            if (!sparse && k > 1) {
                product_rows_outputs(s, data, curvature, v, lo, hi, grad, rsum, f, row, poll);
                return 0.0;
            }
            for (int64_t r = lo; r < hi; ++r) {
                const void* x = row_scores(s, data, r, v, s.fit_intercept, center, f, row);
                const double weight = data.sample_weight ? data.sample_weight[r] : 1.0;
                if (s.model == Model::linear) {
                    f[0] = weight * f[0];
                } else if (s.model == Model::logistic) {
                    f[0] = curvature[r] * f[0];
                } else {
                    const double* prob = curvature + r * width;
                    double mixed = 0.0;
                    for (int64_t c = 0; c < k; ++c) mixed += prob[c] * f[c];
                    for (int64_t c = 0; c < k; ++c) f[c] = weight * (prob[c] * (f[c] - mixed));
                }
                if (sparse) {
                    int64_t begin, end;
                    sparse_row_range(data, r, begin, end);
                    for (int64_t c = 0; c < k; ++c) {
                        double* __restrict g = grad + c * d;
                        for (int64_t e = begin; e < end; ++e) {
                            const int64_t j = sparse_column(data, e);
                            const double xj = standardize
                                                  ? double(data.csr.values[e]) * data.inv_std[j]
                                                  : double(data.csr.values[e]);
                            g[j] = madd(f[c], xj, g[j]);
                        }
                    }
                } else if (standardize) {
                    output_updates(f, static_cast<const double*>(x), grad, k, d);
                } else {
                    output_updates(f, static_cast<const T*>(x), grad, k, d);
                }
                for (int64_t c = 0; c < k; ++c) {
                    if (s.fit_intercept) grad[k * d + c] += f[c];
                    rsum[c] += f[c];
                }
                if (poll && (r - lo + 1) % 512 == 0 && tick(*poll, 512 * d * 2 * k))
                    return 0.0;
            }
            return 0.0;
        });
    if (!done) return false;
    std::copy(total, total + p, out);
    const double* rsum = total + p;
    if (sparse && standardize)
        for (int64_t c = 0; c < k; ++c)
            for (int64_t j = 0; j < d; ++j)
                out[c * d + j] = out[c * d + j] - data.mean[j] * data.inv_std[j] * rsum[c];
    const double alpha = s.penalty == Penalty::l2 ? s.alpha : 0.0;
    for (int64_t j = 0; j < p; ++j) out[j] = out[j] / double(n);
    if (alpha != 0.0)
        for (int64_t j = 0; j < k * d; ++j) out[j] = madd(alpha, v[j], out[j]);
    return true;
}

// The Hessian of linear or logistic regression (one output) on dense X at w, into H (p x p,
// row-major, p = n_params(s), cleared by the caller): [X~, 1]^T diag(c) [X~, 1] / n, plus the
// l2 strength on the coefficients' diagonal; c_i is the row's weight times its loss's curvature
// (1, or sigma (1 - sigma) at the row's score). Rows four at a time: each of H's first d rows
// gets the four rows' x scaled by c_i x_ij in one axpy_rows from its diagonal on (the lower
// triangle is mirrored at the end), the intercept's row by c_i. For the small problems that
// Newton's method and its check after L-BFGS see (1,000 x 10: 66 us in NumPy, 37 here, a pass
// ~20); NumPy's BLAS products are faster where d is large (COMPILED_HESSIAN_MAX_FEATURES in
// fastopt/_backends/cpp.py). `row`: 4 d doubles, the standardised rows. Returns false when
// stopped.
template <class T>
bool dense_hessian(const ModelSpec& s, const Dataset<T>& data, const double* w, double* H,
                   double* row, StopCheck& stop) noexcept {
    constexpr int64_t block = 4, poll_every = 512;
    const int64_t d = s.n_features, p = n_params(s), n = data.n;
    const bool intercept = s.fit_intercept, logistic = s.model == Model::logistic;
    auto add_rows = [&](auto* const* x, const double* c, int64_t rows) {
        double a[block];
        for (int64_t j = 0; j < d; ++j) {
            for (int64_t q = 0; q < rows; ++q) a[q] = c[q] * double(x[q][j]);
            // the upper triangle, from the diagonal: mirrored at the end
            using Row = std::decay_t<decltype(x[0][0])>;
            const Row* from[block];
            for (int64_t q = 0; q < rows; ++q) from[q] = x[q] + j;
            if (rows == block) {
                axpy_rows<block>(a, from, H + j * p + j, d - j);
            } else {
                for (int64_t q = 0; q < rows; ++q) axpy(a[q], from[q], H + j * p + j, d - j);
            }
            if (intercept)
                for (int64_t q = 0; q < rows; ++q) H[j * p + d] += a[q];
        }
        if (intercept) {
            if (rows == block) {
                axpy_rows<block>(c, x, H + d * p, d);
            } else {
                for (int64_t q = 0; q < rows; ++q) axpy(c[q], x[q], H + d * p, d);
            }
            for (int64_t q = 0; q < rows; ++q) H[d * p + d] += c[q];
        }
    };
    for (int64_t lo = 0; lo < n; lo += block) {
        const int64_t rows = std::min(block, n - lo);
        const T* raw[block];
        const double* scaled[block];
        double c[block];
        for (int64_t q = 0; q < rows; ++q) {
            const int64_t r = lo + q;
            raw[q] = data.X + r * d;
            scaled[q] = standardize_row(data, raw[q], d, row + q * d);
            const double weight = data.sample_weight ? data.sample_weight[r] : 1.0;
            c[q] = weight;
            if (logistic) {
                const double score = (scaled[q] ? dot<double>(w, scaled[q], d)
                                                : dot<T>(w, raw[q], d)) +
                                     (intercept ? w[d] : 0.0);
                const double e = std::exp(-std::fabs(score));
                c[q] = weight * (e / ((1.0 + e) * (1.0 + e)));
            }
        }
        if (data.mean != nullptr) add_rows(scaled, c, rows);
        else add_rows(raw, c, rows);
        if ((lo + block) % poll_every == 0 && tick(stop, poll_every * d * d)) return false;
    }
    const double alpha = s.penalty == Penalty::l2 ? s.alpha : 0.0;
    for (int64_t j = 0; j < p * p; ++j) H[j] = H[j] / double(n);
    for (int64_t j = 0; j < p; ++j)
        for (int64_t k = 0; k < j; ++k) H[j * p + k] = H[k * p + j];
    for (int64_t j = 0; j < d; ++j) H[j * p + j] += alpha;
    return true;
}

}  // namespace FASTOPT_ISA
}  // namespace fastopt
