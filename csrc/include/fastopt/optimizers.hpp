// Fused, in-place optimizer updates: one pass over params, grad and state per step.
//
// Each kernel is the torch.optim 2.x single-tensor update written as one elementwise loop.
// Scalars (bias corrections, step sizes) are computed in double exactly as the NumPy reference
// (fastopt/reference/optim.py) computes them in Python, then cast to T; the elementwise
// arithmetic runs in T with the same operation order as the reference, so that with
// -ffp-contract=off the two agree to the last bit.
//
// This header is compiled once per instruction set (see csrc/dispatch/); FASTOPT_ISA names the
// namespace that keeps the variants apart.
#pragma once

#include <cmath>
#include <cstdint>

#include "fastopt/config.hpp"

#ifndef FASTOPT_ISA
#define FASTOPT_ISA baseline
#endif

namespace fastopt {
namespace FASTOPT_ISA {

// torch's lerp: a + w (b - a) for |w| < 0.5, else b - (b - a)(1 - w); both forms are exact at
// their end point.
template <class T>
struct Lerp {
    T w, w_complement;
    bool low;
    explicit Lerp(double weight) noexcept
        : w(T(weight)), w_complement(T(1.0 - weight)), low(std::fabs(weight) < 0.5) {}
    T operator()(T a, T b) const noexcept {
        return low ? a + w * (b - a) : b - (b - a) * w_complement;
    }
};

enum class Decay { none, coupled, decoupled };

inline Decay decay_mode(const OptimConfig& c) noexcept {
    if (c.weight_decay == 0.0) return Decay::none;
    return c.decoupled_weight_decay ? Decay::decoupled : Decay::coupled;
}

// ---------------------------------------------------------------------------------------------
// SGD with momentum, dampening, Nesterov and (coupled) weight decay.
template <class T, bool Decayed, bool Momentum>
void sgd_loop(const OptimConfig& c, bool first, double lr, T* __restrict p,
              const T* __restrict g, T* __restrict buf, int64_t n) noexcept {
    const T wd = T(c.weight_decay), mom = T(c.momentum), keep = T(1.0 - c.dampening);
    const T neg_lr = T(-lr);
    const bool nesterov = c.nesterov;
    for (int64_t i = 0; i < n; ++i) {
        T gi = g[i];
        if (Decayed) gi = gi + wd * p[i];
        if (Momentum) {
            const T b = first ? gi : buf[i] * mom + keep * gi;
            buf[i] = b;
            gi = nesterov ? gi + mom * b : b;
        }
        p[i] = p[i] + neg_lr * gi;
    }
}

template <class T>
void sgd(const OptimConfig& c, OptimScalars& s, double lr, T* p, const T* g, T* const* st,
         int64_t n) noexcept {
    const bool first = s.step == 0;
    const bool decayed = c.weight_decay != 0.0, momentum = c.momentum != 0.0;
    if (decayed && momentum) sgd_loop<T, true, true>(c, first, lr, p, g, st[0], n);
    else if (decayed) sgd_loop<T, true, false>(c, first, lr, p, g, nullptr, n);
    else if (momentum) sgd_loop<T, false, true>(c, first, lr, p, g, st[0], n);
    else sgd_loop<T, false, false>(c, first, lr, p, g, nullptr, n);
    s.step += 1;
}

// ---------------------------------------------------------------------------------------------
template <class T>
void adagrad(const OptimConfig& c, OptimScalars& s, double lr, T* __restrict p,
             const T* __restrict g, T* const* st, int64_t n) noexcept {
    s.step += 1;
    const double step = double(s.step);
    const double clr = lr / (1 + (step - 1) * c.lr_decay);
    const T neg_clr = T(-clr), eps = T(c.eps), wd = T(c.weight_decay);
    const bool decayed = c.weight_decay != 0.0;
    T* __restrict sum = st[0];
    for (int64_t i = 0; i < n; ++i) {
        T gi = g[i];
        if (decayed) gi = gi + wd * p[i];
        const T si = sum[i] + gi * gi;
        sum[i] = si;
        const T std_ = std::sqrt(si) + eps;
        p[i] = p[i] + (neg_clr * gi) / std_;
    }
}

// ---------------------------------------------------------------------------------------------
template <class T, bool Centered, bool Momentum>
void rmsprop_loop(const OptimConfig& c, double lr, T* __restrict p, const T* __restrict g,
                  T* __restrict sq, T* __restrict gavg, T* __restrict buf, int64_t n) noexcept {
    const T a = T(c.alpha), one_minus_a = T(1.0 - c.alpha), eps = T(c.eps);
    const T wd = T(c.weight_decay), mom = T(c.momentum), neg_lr = T(-lr);
    const bool decayed = c.weight_decay != 0.0;
    const Lerp<T> lerp(1.0 - c.alpha);
    for (int64_t i = 0; i < n; ++i) {
        T gi = g[i];
        if (decayed) gi = gi + wd * p[i];
        const T si = sq[i] * a + one_minus_a * gi * gi;
        sq[i] = si;
        T avg;
        if (Centered) {
            const T ga = lerp(gavg[i], gi);
            gavg[i] = ga;
            avg = std::sqrt(si + T(-1) * ga * ga);
        } else {
            avg = std::sqrt(si);
        }
        avg = avg + eps;
        if (Momentum) {
            const T b = buf[i] * mom + (T(1) * gi) / avg;
            buf[i] = b;
            p[i] = p[i] + neg_lr * b;
        } else {
            p[i] = p[i] + (neg_lr * gi) / avg;
        }
    }
}

template <class T>
void rmsprop(const OptimConfig& c, OptimScalars& s, double lr, T* p, const T* g, T* const* st,
             int64_t n) noexcept {
    s.step += 1;
    // state order: square_avg, [grad_avg if centered], [momentum_buffer if momentum > 0]
    T* sq = st[0];
    T* gavg = c.centered ? st[1] : nullptr;
    T* buf = c.momentum > 0 ? st[c.centered ? 2 : 1] : nullptr;
    if (c.centered && c.momentum > 0) rmsprop_loop<T, true, true>(c, lr, p, g, sq, gavg, buf, n);
    else if (c.centered) rmsprop_loop<T, true, false>(c, lr, p, g, sq, gavg, buf, n);
    else if (c.momentum > 0) rmsprop_loop<T, false, true>(c, lr, p, g, sq, gavg, buf, n);
    else rmsprop_loop<T, false, false>(c, lr, p, g, sq, gavg, buf, n);
}

// ---------------------------------------------------------------------------------------------
template <class T>
void adadelta(const OptimConfig& c, OptimScalars& s, double lr, T* __restrict p,
              const T* __restrict g, T* const* st, int64_t n) noexcept {
    s.step += 1;
    const T rho = T(c.rho), one_minus_rho = T(1.0 - c.rho), eps = T(c.eps);
    const T wd = T(c.weight_decay), neg_lr = T(-lr);
    const bool decayed = c.weight_decay != 0.0;
    T* __restrict sq = st[0];
    T* __restrict acc = st[1];
    for (int64_t i = 0; i < n; ++i) {
        T gi = g[i];
        if (decayed) gi = gi + wd * p[i];
        const T si = sq[i] * rho + one_minus_rho * gi * gi;
        sq[i] = si;
        const T std_ = std::sqrt(si + eps);
        const T delta = (std::sqrt(acc[i] + eps) / std_) * gi;
        acc[i] = acc[i] * rho + one_minus_rho * delta * delta;
        p[i] = p[i] + neg_lr * delta;
    }
}

// ---------------------------------------------------------------------------------------------
// Adam and AdamW (decoupled weight decay), with AMSGrad.
template <class T, Decay D, bool Amsgrad>
void adam_loop(const OptimConfig& c, double lr, double step, T* __restrict p,
               const T* __restrict g, T* __restrict m, T* __restrict v, T* __restrict vmax,
               int64_t n) noexcept {
    const double bias_correction1 = 1 - std::pow(c.beta1, step);
    const double bias_correction2 = 1 - std::pow(c.beta2, step);
    const double step_size = lr / bias_correction1;
    const T neg_step_size = T(-step_size);
    const T bc2_sqrt = T(std::pow(bias_correction2, 0.5));
    const T b2 = T(c.beta2), one_minus_b2 = T(1 - c.beta2), eps = T(c.eps);
    const T wd = T(c.weight_decay), shrink = T(1 - lr * c.weight_decay);
    const Lerp<T> lerp(1 - c.beta1);
    for (int64_t i = 0; i < n; ++i) {
        T pi = p[i];
        T gi = g[i];
        if (D == Decay::decoupled) pi = pi * shrink;
        if (D == Decay::coupled) gi = gi + wd * pi;
        const T mi = lerp(m[i], gi);
        const T vi = v[i] * b2 + one_minus_b2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        T second = vi;
        if (Amsgrad) {
            const T vm = vmax[i];
            second = (vm > vi || vm != vm) ? vm : vi;  // NaN-propagating, as torch.maximum
            vmax[i] = second;
        }
        const T denom = std::sqrt(second) / bc2_sqrt + eps;
        p[i] = pi + (neg_step_size * mi) / denom;
    }
}

template <class T>
void adam(const OptimConfig& c, OptimScalars& s, double lr, T* p, const T* g, T* const* st,
          int64_t n) noexcept {
    s.step += 1;
    const double step = double(s.step);
    T* vmax = c.amsgrad ? st[2] : nullptr;
    switch (decay_mode(c)) {
        case Decay::none:
            if (c.amsgrad) adam_loop<T, Decay::none, true>(c, lr, step, p, g, st[0], st[1], vmax, n);
            else adam_loop<T, Decay::none, false>(c, lr, step, p, g, st[0], st[1], vmax, n);
            break;
        case Decay::coupled:
            if (c.amsgrad) adam_loop<T, Decay::coupled, true>(c, lr, step, p, g, st[0], st[1], vmax, n);
            else adam_loop<T, Decay::coupled, false>(c, lr, step, p, g, st[0], st[1], vmax, n);
            break;
        case Decay::decoupled:
            if (c.amsgrad) adam_loop<T, Decay::decoupled, true>(c, lr, step, p, g, st[0], st[1], vmax, n);
            else adam_loop<T, Decay::decoupled, false>(c, lr, step, p, g, st[0], st[1], vmax, n);
            break;
    }
}

// ---------------------------------------------------------------------------------------------
template <class T, Decay D>
void nadam_loop(const OptimConfig& c, double lr, const T* coefs, T* __restrict p,
                const T* __restrict g, T* __restrict m, T* __restrict v, int64_t n) noexcept {
    const T grad_coef = coefs[0], avg_coef = coefs[1], bc2 = coefs[2];
    const T b2 = T(c.beta2), one_minus_b2 = T(1 - c.beta2);
    const T eps = T(c.eps), wd = T(c.weight_decay), shrink = T(1 - lr * c.weight_decay);
    const Lerp<T> lerp(1 - c.beta1);
    for (int64_t i = 0; i < n; ++i) {
        T pi = p[i];
        T gi = g[i];
        if (D == Decay::decoupled) pi = pi * shrink;
        if (D == Decay::coupled) gi = gi + wd * pi;
        const T mi = lerp(m[i], gi);
        const T vi = v[i] * b2 + one_minus_b2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        const T denom = std::sqrt(vi / bc2) + eps;
        pi = pi + (grad_coef * gi) / denom;
        p[i] = pi + (avg_coef * mi) / denom;
    }
}

template <class T>
void nadam(const OptimConfig& c, OptimScalars& s, double lr, T* p, const T* g, T* const* st,
           int64_t n) noexcept {
    s.step += 1;
    const double step = double(s.step);
    const double bias_correction2 = 1 - std::pow(c.beta2, step);
    const double mu = c.beta1 * (1.0 - 0.5 * std::pow(0.96, step * c.momentum_decay));
    const double mu_next = c.beta1 * (1.0 - 0.5 * std::pow(0.96, (step + 1) * c.momentum_decay));
    s.mu_product *= mu;
    const double mu_product_next = s.mu_product * mu_next;
    const T coefs[3] = {T(-lr * (1.0 - mu) / (1.0 - s.mu_product)),
                        T((-lr * mu_next) / (1.0 - mu_product_next)), T(bias_correction2)};
    // The decay mode is a template argument: a branch inside the loop stops vectorisation.
    switch (decay_mode(c)) {
        case Decay::none: nadam_loop<T, Decay::none>(c, lr, coefs, p, g, st[0], st[1], n); break;
        case Decay::coupled: nadam_loop<T, Decay::coupled>(c, lr, coefs, p, g, st[0], st[1], n); break;
        case Decay::decoupled: nadam_loop<T, Decay::decoupled>(c, lr, coefs, p, g, st[0], st[1], n); break;
    }
}

// ---------------------------------------------------------------------------------------------
template <class T, Decay D, bool Rectified>
void radam_loop(const OptimConfig& c, double lr, const T* coefs, T* __restrict p,
                const T* __restrict g, T* __restrict m, T* __restrict v, int64_t n) noexcept {
    const T bc1 = coefs[0], rect_t = coefs[1], bc2_sqrt = coefs[2], lr_t = T(lr);
    const T b2 = T(c.beta2), one_minus_b2 = T(1 - c.beta2), eps = T(c.eps);
    const T wd = T(c.weight_decay), shrink = T(1 - lr * c.weight_decay);
    const Lerp<T> lerp(1 - c.beta1);
    for (int64_t i = 0; i < n; ++i) {
        T pi = p[i];
        T gi = g[i];
        if (D == Decay::decoupled) pi = pi * shrink;
        if (D == Decay::coupled) gi = gi + wd * pi;
        const T mi = lerp(m[i], gi);
        const T vi = v[i] * b2 + one_minus_b2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        const T corrected = (mi / bc1) * lr_t;
        if (Rectified) {
            const T adaptive = bc2_sqrt / (std::sqrt(vi) + eps);
            p[i] = pi - (corrected * adaptive) * rect_t;
        } else {
            p[i] = pi - corrected;
        }
    }
}

template <class T, Decay D>
void radam_dispatch(bool rectified, const OptimConfig& c, double lr, const T* coefs, T* p,
                    const T* g, T* const* st, int64_t n) noexcept {
    if (rectified) radam_loop<T, D, true>(c, lr, coefs, p, g, st[0], st[1], n);
    else radam_loop<T, D, false>(c, lr, coefs, p, g, st[0], st[1], n);
}

template <class T>
void radam(const OptimConfig& c, OptimScalars& s, double lr, T* p, const T* g, T* const* st,
           int64_t n) noexcept {
    s.step += 1;
    const double step = double(s.step);
    const double bias_correction1 = 1 - std::pow(c.beta1, step);
    const double bias_correction2 = 1 - std::pow(c.beta2, step);
    const double rho_inf = 2 / (1 - c.beta2) - 1;
    const double rho_t = rho_inf - 2 * step * std::pow(c.beta2, step) / bias_correction2;
    const bool rectified = rho_t > 5.0;
    const double rect =
        rectified ? std::pow((rho_t - 4) * (rho_t - 2) * rho_inf /
                                 ((rho_inf - 4) * (rho_inf - 2) * rho_t),
                             0.5)
                  : 0.0;
    const T coefs[3] = {T(bias_correction1), T(rect), T(std::pow(bias_correction2, 0.5))};
    switch (decay_mode(c)) {
        case Decay::none: radam_dispatch<T, Decay::none>(rectified, c, lr, coefs, p, g, st, n); break;
        case Decay::coupled: radam_dispatch<T, Decay::coupled>(rectified, c, lr, coefs, p, g, st, n); break;
        case Decay::decoupled: radam_dispatch<T, Decay::decoupled>(rectified, c, lr, coefs, p, g, st, n); break;
    }
}

// ---------------------------------------------------------------------------------------------
// One update of `n` parameters. `state` holds state_size(c) arrays of length n, in the order
// state_names(c) gives; `lr` is this step's learning rate (the schedule's, or c.lr).
template <class T>
void optimizer_step(const OptimConfig& c, OptimScalars& s, double lr, T* params, const T* grad,
                    T* const* state, int64_t n) noexcept {
    switch (c.kind) {
        case Optim::sgd: sgd(c, s, lr, params, grad, state, n); break;
        case Optim::adagrad: adagrad(c, s, lr, params, grad, state, n); break;
        case Optim::rmsprop: rmsprop(c, s, lr, params, grad, state, n); break;
        case Optim::adadelta: adadelta(c, s, lr, params, grad, state, n); break;
        case Optim::adam: adam(c, s, lr, params, grad, state, n); break;
        case Optim::nadam: nadam(c, s, lr, params, grad, state, n); break;
        case Optim::radam: radam(c, s, lr, params, grad, state, n); break;
    }
}

}  // namespace FASTOPT_ISA
}  // namespace fastopt
