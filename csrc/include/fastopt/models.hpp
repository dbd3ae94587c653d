// Losses and minibatch gradients of linear, logistic and softmax regression.
//
// The objective, parameter layout and formulas are specified in fastopt/reference/models.py.
// Everything is accumulated in double whatever T is; dot products use eight fixed lanes summed
// in a fixed order, so results do not depend on the instruction set the kernels were built for.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "fastopt/config.hpp"

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

template <class T>
inline double dot(const double* __restrict w, const T* __restrict x, int64_t d) noexcept {
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t j = 0;
    for (; j + 8 <= d; j += 8)
        for (int l = 0; l < 8; ++l) acc[l] += w[j + l] * double(x[j + l]);
    double tail = 0.0;
    for (; j < d; ++j) tail += w[j] * double(x[j]);
    return (((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))) +
           tail;
}

// x~ = (x - mean) * inv_std into `out`, or null when not standardising (use x itself).
template <class T>
inline const double* standardize_row(const Dataset<T>& data, const T* x, int64_t d,
                                     double* __restrict out) noexcept {
    if (data.mean == nullptr) return nullptr;
    for (int64_t j = 0; j < d; ++j) out[j] = (double(x[j]) - data.mean[j]) * data.inv_std[j];
    return out;
}

// Loss of one row and, in place of its scores, the residual dl/df. Returns the loss.
inline double loss_and_residual(Model model, double* __restrict f, int64_t k, double y) noexcept {
    switch (model) {
        case Model::linear: {
            const double r = f[0] - y;
            f[0] = r;
            return 0.5 * r * r;
        }
        case Model::logistic: {
            const double z = f[0];
            const double e = std::exp(-std::fabs(z));
            const double loss = std::max(z, 0.0) + std::log1p(e) - y * z;
            const double sigmoid = z >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
            f[0] = sigmoid - y;
            return loss;
        }
        case Model::softmax: {
            const int64_t label = static_cast<int64_t>(y);
            double top = f[0];
            for (int64_t c = 1; c < k; ++c) top = std::max(top, f[c]);
            const double f_label = f[label];
            double total = 0.0;
            for (int64_t c = 0; c < k; ++c) {
                f[c] = std::exp(f[c] - top);
                total += f[c];
            }
            const double lse = top + std::log(total);
            for (int64_t c = 0; c < k; ++c) f[c] = f[c] / total;
            f[label] -= 1.0;
            return lse - f_label;
        }
    }
    return 0.0;
}

// alpha * P(W) for the coefficient block `w` (length k*d).
inline double penalty_value(const ModelSpec& s, const double* w) noexcept {
    if (s.penalty == Penalty::none || s.alpha == 0.0) return 0.0;
    const int64_t size = s.n_outputs * s.n_features;
    const double l1 = l1_share(s);
    double abs_sum = 0.0, sq_sum = 0.0;
    for (int64_t j = 0; j < size; ++j) {
        abs_sum += std::fabs(w[j]);
        sq_sum += w[j] * w[j];
    }
    return s.alpha * (l1 * abs_sum + 0.5 * (1 - l1) * sq_sum);
}

inline void add_penalty_gradient(const ModelSpec& s, const double* __restrict w,
                                 double* __restrict grad) noexcept {
    if (s.penalty == Penalty::none || s.alpha == 0.0) return;
    const int64_t size = s.n_outputs * s.n_features;
    const double l1 = l1_share(s), l2 = 1 - l1, alpha = s.alpha;
    for (int64_t j = 0; j < size; ++j) {
        const double sign = w[j] > 0 ? 1.0 : (w[j] < 0 ? -1.0 : 0.0);
        grad[j] = grad[j] + alpha * (l1 * sign + l2 * w[j]);
    }
}

// Bring row r of X towards the core ahead of use: in a shuffled epoch every row is a random
// fetch, and the row indices are known in advance.
template <class T>
inline void prefetch_row(const T* X, int64_t r, int64_t d) noexcept {
    const char* p = reinterpret_cast<const char*>(X + r * d);
    const int64_t bytes = d * int64_t(sizeof(T));
    for (int64_t offset = 0; offset < bytes; offset += 64) __builtin_prefetch(p + offset, 0, 3);
}

// Sum of s_i * l_i over the m rows row_of(0), ..., row_of(m - 1), and the gradient of L_B
// (penalty included) into ws.grad. One pass per row: its scores, loss and residual, then its
// contribution to the gradient while the row is still in L1.
template <class T, class RowOf>
double batch_gradient(const ModelSpec& s, const Dataset<T>& data, RowOf row_of, int64_t m,
                      Workspace<T>& ws, StopCheck& stop) noexcept {
    // Rows requested ahead of use (measured on W1: 4 beats 0, 2, 8 and 16).
    constexpr int64_t lookahead = 4;
    const int64_t d = s.n_features, k = s.n_outputs, p = n_params(s);
    const double* w = ws.params;
    const double* b = w + k * d;
    double* __restrict grad = ws.grad;
    double* __restrict f = ws.scores;
    for (int64_t j = 0; j < p; ++j) grad[j] = 0.0;
    double loss_sum = 0.0;
    for (int64_t start = 0; start < m; start += Workspace<T>::chunk) {
        const int64_t count = std::min(Workspace<T>::chunk, m - start);
        int64_t* __restrict rows = ws.rows;
        for (int64_t i = 0; i < count; ++i) rows[i] = row_of(start + i);
        for (int64_t i = 0; i < std::min(lookahead, count); ++i) prefetch_row(data.X, rows[i], d);
        for (int64_t i = 0; i < count; ++i) {
            if (i + lookahead < count) {
                const int64_t ahead = rows[i + lookahead];
                prefetch_row(data.X, ahead, d);
                __builtin_prefetch(data.y + ahead, 0, 3);
                if (data.sample_weight) __builtin_prefetch(data.sample_weight + ahead, 0, 3);
            }
            const int64_t r = rows[i];
            const T* x = data.X + r * d;
            const double* xs = standardize_row(data, x, d, ws.row);
            for (int64_t c = 0; c < k; ++c) {
                const double score = xs ? dot<double>(w + c * d, xs, d) : dot<T>(w + c * d, x, d);
                f[c] = s.fit_intercept ? score + b[c] : score;
            }
            const double loss = loss_and_residual(s.model, f, k, data.y[r]);
            const double weight = data.sample_weight ? data.sample_weight[r] : 1.0;
            loss_sum += weight * loss;
            for (int64_t c = 0; c < k; ++c) {
                const double rc = f[c] * weight;
                double* __restrict g = grad + c * d;
                if (xs) {
                    for (int64_t j = 0; j < d; ++j) g[j] += rc * xs[j];
                } else {
                    for (int64_t j = 0; j < d; ++j) g[j] += rc * double(x[j]);
                }
                if (s.fit_intercept) grad[k * d + c] += rc;
            }
        }
        if (tick(stop, count * d * (2 * k + 1))) return loss_sum;  // ~ multiply-adds done
    }
    for (int64_t j = 0; j < p; ++j) grad[j] = grad[j] / double(m);
    add_penalty_gradient(s, w, grad);
    return loss_sum;
}

}  // namespace FASTOPT_ISA
}  // namespace fastopt
