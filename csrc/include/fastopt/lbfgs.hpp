// L-BFGS with a strong-Wolfe line search, the whole loop compiled: the same algorithm, step
// for step, as fastopt/solvers.py (lbfgs, strong_wolfe, _two_loop, _add_pair, _gap_estimate,
// _Progress), which is its reference; only the rounding of the dot products differs. Each
// objective evaluation is a call of `evaluate`, one pass over X. The caller formats the
// messages (fastopt/solvers.py, _compiled_message) from the reason and detail returned here.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <deque>
#include <limits>
#include <vector>

namespace fastopt {

struct LbfgsSettings {
    int64_t max_iter;
    int64_t history_size;
    int64_t max_eval;
    double tolerance_grad;
    double tolerance_change;
    double tolerance_gap;  // 0: never
    double curvature_floor;
};

// Why the loop ended; fastopt/solvers.py maps each to the status and message of lbfgs.
enum class LbfgsReason : int32_t {
    max_iter = 0,
    grad = 1,           // converged: max |g| <= tolerance_grad
    small_step = 2,     // converged: the line search's interval (detail) below tolerance_change
    gap = 3,            // converged: the gap estimate (detail) <= tolerance_gap
    revisited = 4,      // precision: an iterate repeated one of the last 20
    step = 5,           // converged: the step's max-norm (detail) <= tolerance_change
    change = 6,         // converged: the objective's change (detail) < tolerance_change
    max_eval = 7,
    not_descent = 8,    // line search: g.d (detail) not negative
    search_precision = 9,  // line search: interval (detail) below the rounding of x
    no_wolfe = 10,      // line search: no strong-Wolfe step in 25 evaluations
    nonfinite = 11,     // line search: no finite trial (down to step `detail`)
    nonfinite_start = 12,
    stopped = 13,       // Ctrl-C
};

struct LbfgsStep {
    double loss, grad_max, step, gap, seconds;
    int64_t evals;
};

template <class T>
struct LbfgsOutcome {
    LbfgsReason reason = LbfgsReason::max_iter;
    double detail = 0.0;
    int64_t n_iter = 0, n_evals = 0;
    double f = 0.0;
    std::vector<T> x;
    std::vector<double> g;
    std::vector<LbfgsStep> history;
    std::vector<std::vector<double>> pairs_s, pairs_y;
    double flattest = std::numeric_limits<double>::infinity(), steepest = 0.0;
};

namespace lbfgs_detail {

// Eight partial sums (i mod 8), added in a fixed order: one running sum was a chain of
// dependent additions, and the two-loop recursion's ~30 dot products an iteration took ~15 us
// of benchopt 200 x 500's ~45 us iterations.
inline double dot(const std::vector<double>& a, const std::vector<double>& b) noexcept {
    double lane[8] = {};
    const size_t n = a.size(), whole = n - n % 8;
    for (size_t i = 0; i < whole; i += 8)
        for (int l = 0; l < 8; ++l) lane[l] += a[i + l] * b[i + l];
    double sum = ((lane[0] + lane[4]) + (lane[2] + lane[6])) +
                 ((lane[1] + lane[5]) + (lane[3] + lane[7]));
    for (size_t i = whole; i < n; ++i) sum += a[i] * b[i];
    return sum;
}

inline double max_abs(const std::vector<double>& a) noexcept {
    double top = 0.0;
    for (double v : a) top = std::max(top, std::fabs(v));
    return top;
}

inline bool all_finite(const std::vector<double>& a) noexcept {
    for (double v : a)
        if (!std::isfinite(v)) return false;
    return true;
}

// Minimiser of the cubic through (a, fa), (b, fb) with slopes ga, gb, or NaN when it has none
// (Nocedal & Wright, eq. 3.59): solvers.py _cubic_minimizer.
inline double cubic_minimizer(double a, double fa, double ga, double b, double fb,
                              double gb) noexcept {
    const double none = std::numeric_limits<double>::quiet_NaN();
    if (a == b) return none;
    const double d1 = ga + gb - 3.0 * (fa - fb) / (a - b);
    const double disc = d1 * d1 - ga * gb;
    if (!std::isfinite(disc) || disc < 0) return none;
    const double d2 = std::copysign(std::sqrt(disc), b - a);
    const double denom = gb - ga + 2.0 * d2;
    if (denom == 0 || !std::isfinite(denom)) return none;
    const double t = b - (b - a) * (gb + d2 - d1) / denom;
    return std::isfinite(t) ? t : none;
}

template <class T>
struct Trial {
    double t = 0.0, f = 0.0, slope = 0.0;
    std::vector<T> x;
    std::vector<double> g;
    bool finite = true, moved = true;
};

struct Pair {
    std::vector<double> s, y;
    double rho;
};

// H_k g for each H_0 = scale I of `scales` (NaN: s^T y / y^T y of the newest pair), as
// solvers.py _two_loop.
inline void two_loop(const std::vector<double>& g, const std::deque<Pair>& pairs,
                     const double* scales, int count, std::vector<double>* rows) {
    std::vector<double> q = g;
    std::vector<double> alphas;
    alphas.reserve(pairs.size());
    for (auto it = pairs.rbegin(); it != pairs.rend(); ++it) {
        const double a = it->rho * dot(it->s, q);
        for (size_t i = 0; i < q.size(); ++i) q[i] -= it->y[i] * a;
        alphas.push_back(a);
    }
    const double newest = pairs.empty() ? 1.0
                                        : dot(pairs.back().s, pairs.back().y) /
                                              dot(pairs.back().y, pairs.back().y);
    for (int r = 0; r < count; ++r) {
        std::vector<double>& row = rows[r];
        const double scale = std::isnan(scales[r]) ? newest : scales[r];
        row.resize(q.size());
        for (size_t i = 0; i < q.size(); ++i) row[i] = q[i] * scale;
        size_t back = alphas.size();
        for (const Pair& pair : pairs) {
            const double a = alphas[--back];
            const double b = pair.rho * dot(pair.y, row);
            for (size_t i = 0; i < row.size(); ++i) row[i] += pair.s[i] * (a - b);
        }
    }
}

}  // namespace lbfgs_detail

// Minimise from x0. `evaluate(x, f, g)` sets the objective and its gradient at x (T[p]) and
// returns false when Ctrl-C stopped it (the outcome is then `stopped`).
template <class T, class Evaluate>
LbfgsOutcome<T> lbfgs(Evaluate&& evaluate, std::vector<T> x0, const LbfgsSettings& set) {
    using namespace lbfgs_detail;
    using Clock = std::chrono::steady_clock;
    const double inf = std::numeric_limits<double>::infinity();
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const size_t p = x0.size();
    LbfgsOutcome<T> out;
    bool stopped = false;
    int64_t calls = 0;
    // solvers.py _Counter: value, gradient and whether both are finite.
    auto count = [&](const std::vector<T>& x, double& f, std::vector<double>& g) {
        ++calls;
        g.resize(p);
        if (!evaluate(x.data(), f, g.data())) stopped = true;
        return std::isfinite(f) && all_finite(g);
    };
    std::vector<T> x = std::move(x0);
    double f;
    std::vector<double> g;
    if (!count(x, f, g) || stopped) {
        out.reason = stopped ? LbfgsReason::stopped : LbfgsReason::nonfinite_start;
        out.x = x;
        out.f = nan;
        out.g.assign(p, nan);
        out.n_evals = calls;
        return out;
    }
    std::deque<Pair> pairs;
    double flattest = inf, steepest = 0.0;
    int64_t iteration = 0, max_iter = set.max_iter;
    LbfgsReason reason = LbfgsReason::max_iter;
    double detail = 0.0;
    if (max_abs(g) <= set.tolerance_grad) {
        reason = LbfgsReason::grad;
        max_iter = 0;
    }
    std::vector<double> products[2];
    const double newest_scale[1] = {nan};
    two_loop(g, pairs, newest_scale, 1, products);
    std::vector<double> direction(p);
    for (size_t i = 0; i < p; ++i) direction[i] = -products[0][i];
    if (!(dot(g, direction) < 0)) {
        pairs.clear();
        for (size_t i = 0; i < p; ++i) direction[i] = -g[i];
    }
    std::deque<std::vector<T>> seen{x};  // _Progress: the last 20 iterates
    const double eps = std::numeric_limits<T>::epsilon();
    while (iteration < max_iter) {
        const auto started = Clock::now();
        const int64_t evals_before = calls;
        double t0 = 1.0;
        if (iteration == 0 && pairs.empty()) t0 = 1.0 / std::sqrt(dot(g, g));

        // ---- strong_wolfe(count, x, f, g, direction, t0): solvers.py, step for step ----
        constexpr double c1 = 1e-4, c2 = 0.9;
        constexpr int64_t max_evals = 25;
        enum class Search { ok, line_search, precision, small_step, nonfinite, stopped };
        Search status = Search::ok;
        double why = 0.0;  // the number of the message
        LbfgsReason failure = LbfgsReason::no_wolfe;
        Trial<T> accepted;
        const double dphi0 = dot(g, direction);
        int64_t evals = 0;
        if (!(dphi0 < 0)) {
            status = Search::line_search;
            failure = LbfgsReason::not_descent;
            why = dphi0;
        } else {
            std::vector<double> x64(x.begin(), x.end());
            const double d_max = max_abs(direction);
            double x_max = 0.0;
            for (double v : x64) x_max = std::max(x_max, std::fabs(v));
            const double resolution = 2 * eps * std::max(1.0, x_max);
            bool any_finite = false;
            double last_t = t0;
            auto trial = [&](double t) {
                ++evals;
                Trial<T> point;
                point.t = t;
                point.x.resize(p);
                for (size_t i = 0; i < p; ++i) point.x[i] = T(x64[i] + t * direction[i]);
                double value;
                if (!count(point.x, value, point.g)) {
                    point.f = inf;
                    point.slope = nan;
                    point.finite = false;
                    return point;
                }
                any_finite = true;
                point.f = value;
                point.slope = dot(point.g, direction);
                // np.array_equal's test: 0.0 and -0.0 are the same point
                point.moved = !std::equal(point.x.begin(), point.x.end(), x.begin());
                return point;
            };
            auto sufficient = [&](const Trial<T>& q) {
                return q.finite && q.moved && q.f <= f + c1 * q.t * dphi0;
            };
            auto curvature = [&](const Trial<T>& q) { return std::fabs(q.slope) <= -c2 * dphi0; };
            const double noise = 1e-12 * std::max(1.0, std::fabs(f));
            auto approximate_wolfe = [&](const Trial<T>& q) {
                return q.finite && q.f <= f + noise && curvature(q);
            };
            bool done = false;
            auto accept = [&](Trial<T>&& q) {
                accepted = std::move(q);
                status = Search::ok;
                done = true;
            };
            auto give_up = [&](Trial<T>* best, Search kind, LbfgsReason r, double number) {
                done = true;
                if (best != nullptr && best->t > 0) {
                    accepted = *best;
                    status = Search::ok;
                    return;
                }
                status = (any_finite || evals == 0) ? kind : Search::nonfinite;
                failure = r;
                why = number;
                if (status == Search::nonfinite) {
                    failure = LbfgsReason::nonfinite;
                    why = last_t;
                }
            };
            auto zoom = [&](Trial<T> lo, Trial<T> hi) {
                while (evals < max_evals && !stopped) {
                    const double width = std::fabs(hi.t - lo.t);
                    if (width * d_max <= set.tolerance_change)
                        return give_up(&lo, Search::small_step, LbfgsReason::small_step,
                                       width * d_max);
                    if (width * d_max <= resolution)
                        return give_up(&lo, Search::precision, LbfgsReason::search_precision,
                                       width * d_max);
                    const double left = std::min(lo.t, hi.t), right = std::max(lo.t, hi.t);
                    double t;
                    if (hi.finite) {
                        t = cubic_minimizer(lo.t, lo.f, lo.slope, hi.t, hi.f, hi.slope);
                        if (std::isnan(t) || !(left + 0.1 * width <= t && t <= right - 0.1 * width))
                            t = 0.5 * (lo.t + hi.t);
                    } else {
                        t = lo.t + 0.1 * (hi.t - lo.t);
                    }
                    last_t = t;
                    Trial<T> q = trial(t);
                    if (approximate_wolfe(q)) return accept(std::move(q));
                    if (!sufficient(q) || q.f >= lo.f) {
                        hi = std::move(q);
                        continue;
                    }
                    if (curvature(q)) return accept(std::move(q));
                    if (q.slope * (hi.t - lo.t) >= 0) hi = lo;
                    lo = std::move(q);
                }
                give_up(&lo, Search::line_search, LbfgsReason::no_wolfe, double(max_evals));
            };
            Trial<T> prev;
            prev.t = 0.0;
            prev.f = f;
            prev.slope = dphi0;
            double t = t0;
            while (!done && evals < max_evals && !stopped) {
                last_t = t;
                Trial<T> q = trial(t);
                if (approximate_wolfe(q)) {
                    accept(std::move(q));
                    break;
                }
                if (!sufficient(q) || (prev.t > 0 && q.f >= prev.f)) {
                    zoom(prev, std::move(q));
                    break;
                }
                if (curvature(q)) {
                    accept(std::move(q));
                    break;
                }
                if (q.slope >= 0) {
                    zoom(std::move(q), prev);
                    break;
                }
                // Still descending: extrapolate, at least doubling and at most ten-folding.
                const double low = t + (t - prev.t), high = t + 9.0 * (t - prev.t);
                const double guess = cubic_minimizer(prev.t, prev.f, prev.slope, q.t, q.f, q.slope);
                prev = std::move(q);
                t = std::isnan(guess) ? high : std::min(std::max(guess, low), high);
            }
            if (!done && !stopped)
                give_up(prev.t > 0 ? &prev : nullptr, Search::line_search, LbfgsReason::no_wolfe,
                        double(max_evals));
        }
        if (stopped) {
            reason = LbfgsReason::stopped;
            break;
        }
        if (status == Search::small_step) {  // as torch.optim.LBFGS: a converged step size
            reason = LbfgsReason::small_step;
            detail = why;
            break;
        }
        if (status != Search::ok) {
            reason = failure;
            detail = why;
            break;
        }

        // ---- the step taken: lbfgs's loop body ----
        std::vector<double> s(p), y(p);
        for (size_t i = 0; i < p; ++i) {
            s[i] = double(accepted.x[i]) - double(x[i]);
            y[i] = accepted.g[i] - g[i];
        }
        double curvature = inf;  // _add_pair
        {
            const double sy = dot(s, y), yy = dot(y, y);
            if (yy > 0 && sy > 1e-10 * std::sqrt(dot(s, s)) * std::sqrt(yy)) {
                curvature = sy / dot(s, s);
                pairs.push_back(Pair{s, std::move(y), 1.0 / sy});
                if (int64_t(pairs.size()) > set.history_size) pairs.pop_front();
            }
        }
        flattest = std::min(flattest, curvature);
        steepest = std::max(steepest, std::isfinite(curvature) ? curvature : 0.0);
        const double f_change = std::fabs(accepted.f - f);
        x = std::move(accepted.x);
        f = accepted.f;
        g = std::move(accepted.g);
        ++iteration;
        const bool estimating = set.tolerance_gap > 0 && !pairs.empty() && std::isfinite(flattest);
        const bool wide = set.curvature_floor > 0 && steepest >= 30.0 * flattest;
        const double lowest = wide ? std::min(flattest, set.curvature_floor) : flattest;
        const double scales[2] = {nan, 1.0 / lowest};
        two_loop(g, pairs, scales, estimating ? 2 : 1, products);
        for (size_t i = 0; i < p; ++i) direction[i] = -products[0][i];
        double gap = inf;
        if (estimating) {  // _gap_estimate
            const double model = 0.5 * dot(g, products[1]);
            gap = std::max(model, f_change) /
                  std::max(std::fabs(f), std::numeric_limits<double>::min());
        }
        if (!(dot(g, direction) < 0)) {
            pairs.clear();
            for (size_t i = 0; i < p; ++i) direction[i] = -g[i];
        }
        const double grad_max = max_abs(g);
        const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
        out.history.push_back({f, grad_max, accepted.t, gap, seconds, calls - evals_before});
        const double step_max = max_abs(s);
        if (grad_max <= set.tolerance_grad) {
            reason = LbfgsReason::grad;
            break;
        }
        if (gap <= set.tolerance_gap) {
            reason = LbfgsReason::gap;
            detail = gap;
            break;
        }
        // _Progress compares the iterates' bytes
        auto same_bytes = [&](const std::vector<T>& other) {
            return std::memcmp(other.data(), x.data(), p * sizeof(T)) == 0;
        };
        if (std::find_if(seen.begin(), seen.end(), same_bytes) != seen.end()) {
            reason = LbfgsReason::revisited;
            break;
        }
        seen.push_back(x);
        if (seen.size() > 20) seen.pop_front();
        if (step_max <= set.tolerance_change) {
            reason = LbfgsReason::step;
            detail = step_max;
            break;
        }
        if (f_change < set.tolerance_change) {
            reason = LbfgsReason::change;
            detail = f_change;
            break;
        }
        if (calls >= set.max_eval) {
            reason = LbfgsReason::max_eval;
            break;
        }
    }
    out.reason = reason;
    out.detail = detail;
    out.n_iter = iteration;
    out.n_evals = calls;
    out.f = f;
    out.x = std::move(x);
    out.g = std::move(g);
    for (Pair& pair : pairs) {
        out.pairs_s.push_back(std::move(pair.s));
        out.pairs_y.push_back(std::move(pair.y));
    }
    out.flattest = flattest;
    out.steepest = steepest;
    return out;
}

}  // namespace fastopt
