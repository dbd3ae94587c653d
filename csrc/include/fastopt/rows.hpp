// Access to the rows of X (dense or CSR, standardised on the fly or not), prefetching, the
// visiting order, and one row's contribution to a minibatch gradient by the general loop.
#pragma once

#include "fastopt/portable.hpp"

#include <cstdint>

#include "fastopt/config.hpp"
#include "fastopt/losses.hpp"
#include "fastopt/simd.hpp"

#ifndef FASTOPT_ISA
#define FASTOPT_ISA baseline
#endif

namespace fastopt {
namespace FASTOPT_ISA {

inline bool tick(StopCheck& stop, int64_t elements) noexcept {
    stop.since_poll += elements;
    if (stop.poll != nullptr && stop.since_poll >= stop.budget) {
        stop.since_poll = 0;
        stop.stopped = stop.stopped || stop.poll(stop.context);
    }
    return stop.stopped;
}

// x~ = (x - mean) * inv_std into `out`, or null when not standardising (use x itself).
template <class T>
inline const double* standardize_row(const Dataset<T>& data, const T* x, int64_t d,
                                     double* __restrict out) noexcept {
    if (data.mean == nullptr) return nullptr;
    for (int64_t j = 0; j < d; ++j) out[j] = (double(x[j]) - data.mean[j]) * data.inv_std[j];
    return out;
}

// Bring row r of X towards the core ahead of use: in a shuffled epoch every row is a random
// fetch, and the row indices are known in advance.
// Two distances: a few rows ahead into L1, and (`into_l2`) tens of rows ahead into L2 only.
// L2 keeps more misses in flight than L1 does, so the far requests raise the number of rows
// on their way from memory, and the near ones then find them in L2 (W1: an epoch ~1.3x faster
// than with the near requests alone; bench/README.md).
template <class T>
inline void prefetch_row(const T* X, int64_t r, int64_t d, bool into_l2 = false) noexcept {
    const char* p = reinterpret_cast<const char*>(X + r * d);
    const int64_t bytes = d * int64_t(sizeof(T));
    if (into_l2)
        for (int64_t offset = 0; offset < bytes; offset += 64) FASTOPT_PREFETCH(p + offset, 0, 2);
    else
        for (int64_t offset = 0; offset < bytes; offset += 64) FASTOPT_PREFETCH(p + offset, 0, 3);
}

// Dense rows read in order (full passes, unshuffled epochs, Hessian-vector products) request
// X's bytes this far ahead of row r, a cache line per 64 bytes the dot product reads
// (dot(..., ahead)), wherever rows begin and end: whole rows 4 rows ahead (prefetch_row) were
// too close for narrow rows and, as a burst of requests, too far for wide ones. One-output
// passes, 1 thread, 256 MB of X, against a dot product over the same bytes: d = 50 1.46 ->
// 1.27x the read, 100 1.40 -> 1.27, 400 1.62 -> 1.22, 1000 1.72 -> 1.37; 1,536 and 3,072
// bytes within noise of 2,048, 4,096 worse; the hardware prefetcher alone 1.5-1.8x
// (bench/README.md). With a float32 X a standardised row's copy (double) requests each line
// twice, harmlessly.
constexpr int64_t stream_ahead_bytes = 2048;

// Where row r's dot product requests X from (stream_ahead_bytes on); null near X's end.
template <class T>
inline const char* stream_ahead(const Dataset<T>& data, int64_t r, int64_t d) noexcept {
    const int64_t row_bytes = d * int64_t(sizeof(T));
    if ((r + 1) * row_bytes + stream_ahead_bytes > data.n * row_bytes) return nullptr;
    return reinterpret_cast<const char*>(data.X + r * d) + stream_ahead_bytes;
}

// Rows of an epoch in visiting order: the shuffled order, or 0, 1, ..., n - 1.
class RowStream {
   public:
    // `order` null: rows in order.
    RowStream(const uint32_t* order, int64_t n) noexcept : order_(order), n_(n) {}

    int64_t row(int64_t pos) const noexcept { return order_ ? int64_t(order_[pos]) : pos; }
    int64_t size() const noexcept { return n_; }
    bool shuffled() const noexcept { return order_ != nullptr; }

   private:
    const uint32_t* order_;
    int64_t n_;
};

// Sparse rows. With standardisation x~_j = (x_j - mean_j) * inv_std_j is dense, so the scores
// and the gradient are split into a sparse part and a per-minibatch correction:
//   score_c = sum_{j in row} w_cj * x_j * inv_std_j  -  center_c,
//             center_c = sum_j w_cj * mean_j * inv_std_j              (once per update)
//   grad_cj = sum_i r_ic * x_ij * inv_std_j  -  (mean_j * inv_std_j) * sum_i r_ic
// Sums run over the stored entries in order, one multiply-add each.
template <class T>
inline bool is_sparse(const Dataset<T>& data) noexcept {
    return data.csr.values != nullptr;
}

template <class T>
inline void sparse_row_range(const Dataset<T>& data, int64_t r, int64_t& begin,
                             int64_t& end) noexcept {
    if (data.csr.indptr64) {
        begin = data.csr.indptr64[r];
        end = data.csr.indptr64[r + 1];
    } else {
        begin = data.csr.indptr32[r];
        end = data.csr.indptr32[r + 1];
    }
}

template <class T>
inline int64_t sparse_column(const Dataset<T>& data, int64_t e) noexcept {
    return data.csr.indices64 ? data.csr.indices64[e] : int64_t(data.csr.indices32[e]);
}

// center_c for the parameters w, into `center` (standardised sparse X only).
template <class T>
inline void sparse_centering(const ModelSpec& s, const Dataset<T>& data, const double* w,
                             double* center) noexcept {
    if (!is_sparse(data) || data.mean == nullptr) return;
    const int64_t d = s.n_features;
    for (int64_t c = 0; c < s.n_outputs; ++c) {
        double sum = 0.0;
        for (int64_t j = 0; j < d; ++j) sum = madd(w[c * d + j], data.mean[j] * data.inv_std[j], sum);
        center[c] = sum;
    }
}

// One sparse row into the scores, loss, residual and gradient. The coefficients of output c
// are w[c * width + index], the intercepts w[k * width + c] (grad alike), where index is the
// entry's column, or `slots[entry]` when given: the lazy epoch's compact arrays
// (epoch.hpp run_epoch_lazy; width is then the number of active columns).
template <class T>
inline double accumulate_sparse_row(const ModelSpec& s, const Dataset<T>& data, int64_t r,
                                    const double* w, double* __restrict grad,
                                    double* __restrict f, const double* center,
                                    double* residual_sum, const int64_t* slots = nullptr,
                                    int64_t width = -1) noexcept {
    const int64_t k = s.n_outputs;
    if (width < 0) width = s.n_features;
    const bool standardize = data.mean != nullptr;
    int64_t begin, end;
    sparse_row_range(data, r, begin, end);
    const T* values = data.csr.values;
    // Entry e's place in w and grad, and its (scaled) value.
    auto entry = [&](int64_t e, int64_t& index) {
        const int64_t j = sparse_column(data, e);
        index = slots ? slots[e - begin] : j;
        return standardize ? double(values[e]) * data.inv_std[j] : double(values[e]);
    };
    for (int64_t c = 0; c < k; ++c) {
        const double* wc = w + c * width;
        double score = 0.0;
        for (int64_t e = begin; e < end; ++e) {
            int64_t index;
            const double x = entry(e, index);
            score = madd(wc[index], x, score);
        }
        if (standardize) score = score - center[c];
        f[c] = s.fit_intercept ? score + w[k * width + c] : score;
    }
    const double loss = loss_and_residual(s.model, f, k, data.y[r]);
    const double weight = data.sample_weight ? data.sample_weight[r] : 1.0;
    for (int64_t c = 0; c < k; ++c) {
        const double rc = f[c] * weight;
        double* __restrict g = grad + c * width;
        for (int64_t e = begin; e < end; ++e) {
            int64_t index;
            const double x = entry(e, index);
            g[index] = madd(rc, x, g[index]);
        }
        if (s.fit_intercept) grad[k * width + c] += rc;
        if (standardize) residual_sum[c] += rc;
    }
    return weight * loss;
}

// One dense row's contribution: its scores, loss and residual, then its gradient term added to
// `grad` while the row is still in L1. Returns s_r * l_r.
template <class T>
inline double accumulate_row(const ModelSpec& s, const Dataset<T>& data, int64_t r,
                             const double* w, double* __restrict grad, double* __restrict f,
                             double* row_scratch) noexcept {
    const int64_t d = s.n_features, k = s.n_outputs;
    const double* b = w + k * d;
    const T* x = data.X + r * d;
    const double* xs = standardize_row(data, x, d, row_scratch);
    for (int64_t c = 0; c < k; ++c) {
        const double score = xs ? dot<double>(w + c * d, xs, d) : dot<T>(w + c * d, x, d);
        f[c] = s.fit_intercept ? score + b[c] : score;
    }
    const double loss = loss_and_residual(s.model, f, k, data.y[r]);
    const double weight = data.sample_weight ? data.sample_weight[r] : 1.0;
    for (int64_t c = 0; c < k; ++c) {
        const double rc = f[c] * weight;
        double* __restrict g = grad + c * d;
        if (xs) axpy<double>(rc, xs, g, d);
        else axpy<T>(rc, x, g, d);
        if (s.fit_intercept) grad[k * d + c] += rc;
    }
    return weight * loss;
}

// Row r's label and weight.
template <class T>
inline void prefetch_labels(const Dataset<T>& data, int64_t r) noexcept {
    FASTOPT_PREFETCH(data.y + r, 0, 3);
    if (data.sample_weight) FASTOPT_PREFETCH(data.sample_weight + r, 0, 3);
}

// The entries of sparse row r (a separate function from the dense case: with both paths in
// one function the compiler scheduled the dense prefetches far worse, an epoch 2x slower).
template <class T>
inline void prefetch_sparse_sample(const Dataset<T>& data, int64_t r) noexcept {
    int64_t begin, end;
    sparse_row_range(data, r, begin, end);
    FASTOPT_PREFETCH(data.csr.values + begin, 0, 3);
    if (data.csr.indices64) FASTOPT_PREFETCH(data.csr.indices64 + begin, 0, 3);
    else FASTOPT_PREFETCH(data.csr.indices32 + begin, 0, 3);
    prefetch_labels(data, r);
}

template <class T>
inline void prefetch_sample(const Dataset<T>& data, int64_t r, int64_t d) noexcept {
    prefetch_row(data.X, r, d);
    prefetch_labels(data, r);
}

// The gradient mean and penalty of a minibatch of m rows whose sum is in grad (standardised
// sparse X: with the centring correction from the residual sums first). Returns whether every
// coordinate of the result is finite.
template <class T>
inline bool finish_gradient(const ModelSpec& s, const Dataset<T>& data, const double* w,
                            double* grad, const double* residual_sum, int64_t m) noexcept {
    const int64_t p = n_params(s), d = s.n_features;
    if (is_sparse(data) && data.mean != nullptr)
        for (int64_t c = 0; c < s.n_outputs; ++c)
            for (int64_t j = 0; j < d; ++j)
                grad[c * d + j] = grad[c * d + j] - data.mean[j] * data.inv_std[j] * residual_sum[c];
    if (s.penalty != Penalty::none && s.alpha != 0.0) {
        for (int64_t j = 0; j < p; ++j) grad[j] = grad[j] / double(m);
        add_penalty_gradient(s, w, grad);
        return all_finite(grad, p);
    }
    uint64_t bad = 0;  // the check of all_finite, in the same pass as the division
    for (int64_t j = 0; j < p; ++j) {
        grad[j] = grad[j] / double(m);
        bad |= uint64_t(nonfinite(grad[j]));
    }
    return bad == 0;
}

}  // namespace FASTOPT_ISA
}  // namespace fastopt
