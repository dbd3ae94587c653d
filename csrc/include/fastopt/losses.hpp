// Per-row losses and residuals of linear, logistic and softmax regression, and the penalty.
//
// The objective, parameter layout and formulas are specified in fastopt/reference/models.py.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "fastopt/config.hpp"
#include "fastopt/logistic_math.hpp"

#ifndef FASTOPT_ISA
#define FASTOPT_ISA baseline
#endif

namespace fastopt {
namespace FASTOPT_ISA {

// Loss of one row and, in place of its scores, the residual dl/df. Returns the loss.
inline double loss_and_residual(Model model, double* __restrict f, int64_t k, double y) noexcept {
    switch (model) {
        case Model::linear: {
            const double r = f[0] - y;
            f[0] = r;
            return 0.5 * r * r;
        }
        case Model::logistic:
            return logistic_loss(f[0], y, f[0]);
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

}  // namespace FASTOPT_ISA
}  // namespace fastopt
