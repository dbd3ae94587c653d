// Python entry points for training: one epoch, and the full objective with its gradient.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "bindings/array_checks.hpp"
#include "bindings/dataset.hpp"
#include "dispatch/dispatch.hpp"
#include "fastopt/config.hpp"
#include "fastopt/lbfgs.hpp"
#include "fastopt/objective.hpp"
#include "fastopt/scans.hpp"
#include "fastopt/shuffle.hpp"

namespace py = pybind11;

namespace fastopt::bindings {
namespace {

// Ctrl-C: called from the GIL-free loop now and then; Python's handler only sets a flag, so
// take the GIL and let it run. The KeyboardInterrupt it raises stays pending for the caller.
bool poll_signals(void*) noexcept {
    py::gil_scoped_acquire gil;
    return PyErr_CheckSignals() != 0;
}

// A loop that stopped for Ctrl-C: the KeyboardInterrupt its poll left pending (or a new one).
void raise_if_stopped(bool stopped) {
    if (!stopped) return;
    if (!PyErr_Occurred()) PyErr_SetNone(PyExc_KeyboardInterrupt);
    throw py::error_already_set();
}

// Memory the kernels load four doubles at a time from: on 64-byte boundaries (glibc gives
// 16), so that with a row length that is a multiple of 4 no 32-byte load straddles two cache
// lines; objective.hpp's PassLayout carves the pass memory on such boundaries too. Softmax,
// 5 classes, 300,000 x 100: the pass 126 -> 115 ns a row (the same bits).
template <class T>
struct CacheAligned {
    using value_type = T;
    CacheAligned() = default;
    template <class U>
    CacheAligned(const CacheAligned<U>&) noexcept {}
    T* allocate(size_t count) {
        return static_cast<T*>(::operator new(count * sizeof(T), std::align_val_t{64}));
    }
    void deallocate(T* p, size_t) noexcept { ::operator delete(p, std::align_val_t{64}); }
    template <class U>
    bool operator==(const CacheAligned<U>&) const noexcept { return true; }
    template <class U>
    bool operator!=(const CacheAligned<U>&) const noexcept { return false; }
};
using AlignedDoubles = std::vector<double, CacheAligned<double>>;

template <class T>
struct Scratch {
    AlignedDoubles params, grad, row;
    std::vector<double> scores, center, residual_sum;
    std::vector<T> grad_t;
    std::vector<uint32_t> order;
    Workspace<T> ws;

    // `order_rows`: n for a shuffled epoch (the visiting order), else 0.
    explicit Scratch(const ModelSpec& s, int64_t order_rows = 0)
        : params(n_params(s)), grad(n_params(s)),
          row(size_t(standardized_rows(s.n_features) * s.n_features)), scores(s.n_outputs),
          center(s.n_outputs), residual_sum(s.n_outputs), grad_t(n_params(s)),
          order(size_t(order_rows)),
          ws{params.data(), grad.data(), grad_t.data(), scores.data(), row.data(), order.data(),
             center.data(), residual_sum.data()} {}
};

template <class T>
EpochOutcome epoch_impl(const CheckedDataset& ds, py::array& params, const OptimConfig& opt,
                        OptimScalars& scalars, std::vector<py::array>& state,
                        const EpochSpec& e) {
    Scratch<T> scratch(ds.spec, e.shuffle ? ds.n : 0);
    T* bufs[3] = {nullptr, nullptr, nullptr};
    for (size_t i = 0; i < state.size(); ++i) bufs[i] = static_cast<T*>(state[i].mutable_data());
    T* w = static_cast<T*>(params.mutable_data());
    const Dataset<T> data = ds.view<T>();
    StopCheck stop;
    stop.poll = &poll_signals;
    const auto kernel = dispatch::kernels().of<T>().run_epoch;
    EpochOutcome out;
    {
        py::gil_scoped_release release;
        out = kernel(ds.spec, data, opt, scalars, w, bufs, e, scratch.ws, stop);
    }
    raise_if_stopped(out.status == EpochStatus::interrupted);
    return out;
}

// The parameters for `ds`: a vector of n_params(spec) elements of X's dtype, C-contiguous.
py::array checked_params(const CheckedDataset& ds, const py::handle& params_obj) {
    py::array params = as_ndarray(params_obj, "params");
    if (!params.dtype().equal(ds.X.dtype()))
        throw py::type_error("params has dtype " + dtype_name(params) + " but X has dtype " +
                             dtype_name(ds.X) + "; they must match");
    if (params.ndim() != 1 || params.shape(0) != n_params(ds.spec))
        throw py::value_error("params must have shape (" + std::to_string(n_params(ds.spec)) +
                              ",), got " + shape_str(params));
    require_c_contiguous(params, "params");
    return params;
}

// Only O(1) checks: the dataset's arrays were checked when it was built.
py::tuple run_epoch(const CheckedDataset& ds, const py::handle& params_obj,
                    const OptimConfig& opt, const py::dict& state_arrays, int64_t step,
                    double mu_product, int64_t batch_size, bool shuffle, uint64_t seed,
                    uint64_t epoch, const py::handle& lrs_obj, int64_t threads, bool lazy,
                    bool shuffle_batches) {
    py::array params = checked_params(ds, params_obj);
    require_writeable(params, "params");
    if (batch_size < 1) throw py::value_error("batch_size must be >= 1");
    if (threads < 1 || threads > 256) throw py::value_error("threads must be in [1, 256]");
    if (shuffle && ds.n > int64_t(0xFFFFFFFF))
        throw py::value_error("the shuffle handles up to 2**32 - 1 rows; pass shuffle=False or "
                              "train on chunks with partial_fit");
    const int64_t steps = (ds.n + batch_size - 1) / batch_size;
    py::array lrs = require_vector(lrs_obj, "lrs", steps);
    std::vector<Span> spans{span_of(params, "params"), span_of(ds.X, "X")};
    std::vector<py::array> state = checked_state(state_arrays, state_size(opt), params, spans);
    if (lazy && !(ds.sparse && !ds.standardized()))
        throw py::value_error("lazy updates need sparse, unstandardised X");

    OptimScalars scalars{step, mu_product};
    const EpochSpec e{batch_size, shuffle, seed, epoch, static_cast<const double*>(lrs.data()),
                      threads, lazy, shuffle && shuffle_batches};
    const EpochOutcome out = ds.f32 ? epoch_impl<float>(ds, params, opt, scalars, state, e)
                                    : epoch_impl<double>(ds, params, opt, scalars, state, e);
    return py::make_tuple(out.loss_sum, out.steps, static_cast<int>(out.status),
                          out.failed_step, scalars.step, scalars.mu_product);
}

baseline::PassLayout pass_layout(const CheckedDataset& ds) {
    const int64_t entries = ds.sparse ? ds.X.shape(0) : ds.n * ds.spec.n_features;
    return baseline::pass_layout(ds.spec, ds.n, entries);
}

// Threads of a full pass: 1..256, and at least four blocks each: starting a thread costs tens
// of microseconds on an idle machine and milliseconds on a busy one (a 10,000-row pass of
// 0.3 ms took 7 ms on two threads), more than a few blocks of rows save. The result is the
// same for any number.
int64_t checked_threads(const CheckedDataset& ds, int64_t threads) {
    if (threads < 1 || threads > 256) throw py::value_error("threads must be in [1, 256]");
    return std::max<int64_t>(1, std::min(threads, pass_layout(ds).blocks / 4));
}

// The memory of a full pass on `threads` threads (objective.hpp PassLayout), allocated here,
// where a failure is a MemoryError, not inside the GIL-free kernels.
AlignedDoubles pass_memory(const CheckedDataset& ds, int64_t threads) {
    return AlignedDoubles(size_t(pass_layout(ds).doubles(threads)));
}

// The scratch of one objective pass (Scratch and pass_memory, ~9 p doubles): the dataset's
// own (CheckedDataset::pass_scratch), reused from call to call, or, while another thread
// holds it, a fresh one. The kernels write every part before they read it. Fresh memory each
// call cost more than the pass on sparse X with many columns: 20,000 x 400,000 CSR, 30
// entries a row, 16.4 ms a pass against 2.4 ms for SciPy's X @ w and X.T @ r, in page faults.
template <class T>
class KeptScratch {
   public:
    KeptScratch(const CheckedDataset& ds, int64_t threads)
        : lock_(*ds.pass_mutex, std::try_to_lock) {
        const size_t doubles = size_t(pass_layout(ds).doubles(threads));
        if (lock_.owns_lock()) {
            if (!ds.pass_scratch) ds.pass_scratch = std::make_shared<Held>(ds.spec);
            held_ = static_cast<Held*>(ds.pass_scratch.get());
        } else {
            own_ = std::make_unique<Held>(ds.spec);
            held_ = own_.get();
        }
        if (held_->lanes.size() < doubles) held_->lanes.resize(doubles);
    }

    Scratch<T>& scratch() noexcept { return held_->scratch; }
    double* lanes() noexcept { return held_->lanes.data(); }

   private:
    struct Held {
        explicit Held(const ModelSpec& s) : scratch(s) {}
        Scratch<T> scratch;
        AlignedDoubles lanes;
    };
    std::unique_lock<std::mutex> lock_;
    std::unique_ptr<Held> own_;
    Held* held_ = nullptr;
};

// The configurations of run_many_epoch, checked: their parameters, optimizer states and
// learning rates, with the data's model and their own penalties.
struct ManyConfigs {
    std::vector<ModelSpec> specs;
    std::vector<OptimConfig> opts;
    std::vector<OptimScalars> scalars;
    std::vector<py::array> params;
    std::vector<std::vector<py::array>> states;
    py::array lrs;  // (K, steps) float64
};

template <class T>
py::list many_epoch_impl(const CheckedDataset& ds, ManyConfigs& k, const EpochSpec& e) {
    const size_t count = k.specs.size();
    const int64_t steps = k.lrs.shape(1);
    std::vector<std::unique_ptr<Scratch<T>>> scratch;
    std::vector<ConfigSlot<T>> slots(count);
    for (size_t i = 0; i < count; ++i) {
        scratch.push_back(std::make_unique<Scratch<T>>(k.specs[i]));
        ConfigSlot<T>& c = slots[i];
        c.spec = k.specs[i];
        c.opt = k.opts[i];
        c.scalars = k.scalars[i];
        c.w = static_cast<T*>(k.params[i].mutable_data());
        for (size_t j = 0; j < k.states[i].size(); ++j)
            c.state[j] = static_cast<T*>(k.states[i][j].mutable_data());
        c.lrs = static_cast<const double*>(k.lrs.data()) + int64_t(i) * steps;
        c.ws = scratch.back()->ws;
    }
    std::vector<uint32_t> order(size_t(e.shuffle ? ds.n : 0));
    const Dataset<T> data = ds.view<T>();
    StopCheck stop;
    stop.poll = &poll_signals;
    const auto kernel = dispatch::kernels().of<T>().run_many_epoch;
    EpochStatus status;
    {
        py::gil_scoped_release release;
        status = kernel(data, slots.data(), int64_t(count), e, order.data(), stop);
    }
    raise_if_stopped(status == EpochStatus::interrupted);
    py::list out;
    for (const ConfigSlot<T>& c : slots)
        out.append(py::make_tuple(c.out.loss_sum, c.out.steps, static_cast<int>(c.out.status),
                                  c.out.failed_step, c.scalars.step, c.scalars.mu_product));
    return out;
}

// One epoch of K configurations on the same minibatches (fastopt/many_epoch.hpp): the lists
// hold one entry per configuration, `lrs` one row. Every array is checked as run_epoch checks
// its own, and no two of them (nor X) may overlap.
py::list run_many_epoch(const CheckedDataset& ds, const py::list& specs,
                        const py::list& params_list, const py::list& optimizers,
                        const py::list& states, const py::list& step,
                        const py::list& mu_product, int64_t batch_size, bool shuffle,
                        uint64_t seed, uint64_t epoch, const py::handle& lrs_obj,
                        bool shuffle_batches) {
    const size_t count = specs.size();
    if (count < 1) throw py::value_error("run_many_epoch needs at least one configuration");
    if (params_list.size() != count || optimizers.size() != count || states.size() != count ||
        step.size() != count || mu_product.size() != count)
        throw py::value_error("specs, params, optimizers, state, step and mu_product must "
                              "have one entry per configuration");
    if (batch_size < 1) throw py::value_error("batch_size must be >= 1");
    if (shuffle && ds.n > int64_t(0xFFFFFFFF))
        throw py::value_error("the shuffle handles up to 2**32 - 1 rows; pass shuffle=False or "
                              "train on chunks with partial_fit");
    const int64_t steps = (ds.n + batch_size - 1) / batch_size;
    ManyConfigs k;
    k.lrs = as_ndarray(lrs_obj, "lrs");
    if (!k.lrs.dtype().equal(py::dtype::of<double>()) || k.lrs.ndim() != 2 ||
        k.lrs.shape(0) != int64_t(count) || k.lrs.shape(1) != steps)
        throw py::value_error("lrs must be a float64 array of shape (" + std::to_string(count) +
                              ", " + std::to_string(steps) + "), got " + dtype_name(k.lrs) +
                              " " + shape_str(k.lrs));
    require_c_contiguous(k.lrs, "lrs");
    std::vector<Span> spans{span_of(ds.X, "X")};
    for (size_t i = 0; i < count; ++i) {
        const ModelSpec spec = specs[i].cast<ModelSpec>();
        if (spec.model != ds.spec.model || spec.n_features != ds.spec.n_features ||
            spec.n_outputs != ds.spec.n_outputs || spec.fit_intercept != ds.spec.fit_intercept)
            throw py::value_error("configuration " + std::to_string(i) +
                                  ": its spec must have the data's model, n_features, "
                                  "n_outputs and fit_intercept");
        k.specs.push_back(spec);
        k.opts.push_back(optimizers[i].cast<OptimConfig>());
        k.scalars.push_back(OptimScalars{step[i].cast<int64_t>(), mu_product[i].cast<double>()});
        py::array params = checked_params(ds, params_list[i]);
        require_writeable(params, "params");
        spans.push_back(span_of(params, "params"));
        k.states.push_back(checked_state(states[i].cast<py::dict>(), state_size(k.opts.back()),
                                         params, spans));
        k.params.push_back(std::move(params));
    }
    const EpochSpec e{batch_size, shuffle, seed, epoch, nullptr, 1, false,
                      shuffle && shuffle_batches};
    return ds.f32 ? many_epoch_impl<float>(ds, k, e) : many_epoch_impl<double>(ds, k, e);
}

template <class T>
py::list many_objective_impl(const CheckedDataset& ds, const std::vector<py::array>& params) {
    const int64_t count = int64_t(params.size()), p = n_params(ds.spec);
    std::vector<const T*> w;
    for (const py::array& a : params) w.push_back(static_cast<const T*>(a.data()));
    std::vector<double> scratch(size_t(std::min<int64_t>(count, max_objective_group) * p));
    std::vector<double> xs(size_t(4 * ds.spec.n_features));
    std::vector<double> out(static_cast<size_t>(count));
    const Dataset<T> data = ds.view<T>();
    StopCheck stop;
    stop.poll = &poll_signals;
    const auto kernel = dispatch::kernels().of<T>().many_objective;
    bool done;
    {
        py::gil_scoped_release release;
        done = kernel(ds.spec, data, w.data(), count, scratch.data(), xs.data(), out.data(),
                      stop);
    }
    raise_if_stopped(!done);
    py::list values;
    for (double v : out) values.append(v);
    return values;
}

template <class T>
double objective_impl(const CheckedDataset& ds, const py::array& params,
                      py::array_t<double>& grad, int64_t threads);

// objective(data, p)[0] of every p in `params_list`: in one pass over dense X with one output,
// else one pass each.
py::list many_objective(const CheckedDataset& ds, const py::list& params_list) {
    std::vector<py::array> params;
    for (const py::handle& item : params_list) params.push_back(checked_params(ds, item));
    if (!ds.sparse && ds.spec.n_outputs == 1)
        return ds.f32 ? many_objective_impl<float>(ds, params)
                      : many_objective_impl<double>(ds, params);
    py::list values;
    py::array_t<double> grad(n_params(ds.spec));
    for (const py::array& p : params)
        values.append(ds.f32 ? objective_impl<float>(ds, p, grad, 1)
                             : objective_impl<double>(ds, p, grad, 1));
    return values;
}

// Objective passes on a Dataset, one after another: the kept scratch, the kernel and the
// Ctrl-C poll, for objective (one pass) and lbfgs (a loop of them). Call without the GIL.
template <class T>
class ObjectivePasses {
   public:
    ObjectivePasses(const CheckedDataset& ds, int64_t threads)
        : ds_(ds), threads_(threads), kept_(ds, threads), data_(ds.view<T>()),
          kernel_(dispatch::kernels().of<T>().objective) {
        stop.poll = &poll_signals;
    }

    // L(w), its float64 gradient into grad.
    double operator()(const T* w, double* grad) noexcept {
        Scratch<T>& scratch = kept_.scratch();
        const double value = kernel_(ds_.spec, data_, w, scratch.ws, kept_.lanes(), threads_, stop);
        std::copy(scratch.grad.begin(), scratch.grad.end(), grad);
        return value;
    }

    StopCheck stop;

   private:
    const CheckedDataset& ds_;
    int64_t threads_;
    KeptScratch<T> kept_;
    Dataset<T> data_;
    dispatch::Objective<T> kernel_;
};

template <class T>
double objective_impl(const CheckedDataset& ds, const py::array& params,
                      py::array_t<double>& grad, int64_t threads) {
    ObjectivePasses<T> passes(ds, threads);
    double value;
    {
        py::gil_scoped_release release;
        value = passes(static_cast<const T*>(params.data()), grad.mutable_data());
    }
    raise_if_stopped(passes.stop.stopped);
    return value;
}

// L-BFGS (csrc/include/fastopt/lbfgs.hpp) from x0 on the objective of a Dataset, the whole
// loop without the GIL, one objective pass per evaluation.
template <class T>
py::dict lbfgs_impl(const CheckedDataset& ds, const py::array& x0, int64_t threads,
                    const LbfgsSettings& settings) {
    ObjectivePasses<T> passes(ds, threads);
    const T* first = static_cast<const T*>(x0.data());
    std::vector<T> start(first, first + n_params(ds.spec));
    const int64_t work = ds.n * n_params(ds.spec);
    LbfgsOutcome<T> out;
    {
        py::gil_scoped_release release;
        out = lbfgs<T>(
            [&](const T* w, double& value, double* grad) {
                value = passes(w, grad);
                // A pass of under 512 rows never reaches the kernel's own polls: count every
                // pass here too, so that Ctrl-C stops a long fit on few rows.
                return !baseline::tick(passes.stop, work);
            },
            std::move(start), settings);
    }
    raise_if_stopped(passes.stop.stopped);
    const size_t steps = out.history.size();
    py::array_t<double> loss(steps), grad_max(steps), step(steps), gap(steps), seconds(steps);
    py::array_t<int64_t> evals(steps);
    for (size_t i = 0; i < steps; ++i) {
        const LbfgsStep& h = out.history[i];
        loss.mutable_at(i) = h.loss;
        grad_max.mutable_at(i) = h.grad_max;
        step.mutable_at(i) = h.step;
        gap.mutable_at(i) = h.gap;
        seconds.mutable_at(i) = h.seconds;
        evals.mutable_at(i) = h.evals;
    }
    py::list pairs;
    for (size_t i = 0; i < out.pairs_s.size(); ++i)
        pairs.append(py::make_tuple(py::array_t<double>(py::ssize_t(out.pairs_s[i].size()),
                                                        out.pairs_s[i].data()),
                                    py::array_t<double>(py::ssize_t(out.pairs_y[i].size()),
                                                        out.pairs_y[i].data())));
    py::dict result;
    result["reason"] = static_cast<int>(out.reason);
    result["detail"] = out.detail;
    result["n_iter"] = out.n_iter;
    result["n_evals"] = out.n_evals;
    result["f"] = out.f;
    result["x"] = py::array_t<T>(py::ssize_t(out.x.size()), out.x.data());
    result["g"] = py::array_t<double>(py::ssize_t(out.g.size()), out.g.data());
    result["loss"] = loss;
    result["grad_max"] = grad_max;
    result["step"] = step;
    result["gap"] = gap;
    result["seconds"] = seconds;
    result["evals"] = evals;
    result["pairs"] = pairs;
    result["curvatures"] = py::make_tuple(out.flattest, out.steepest);
    return result;
}

py::dict lbfgs_fit(const CheckedDataset& ds, const py::handle& x0_obj, int64_t threads,
                   int64_t max_iter, int64_t history_size, int64_t max_eval,
                   double tolerance_grad, double tolerance_change, double tolerance_gap,
                   double curvature_floor) {
    py::array x0 = checked_params(ds, x0_obj);
    threads = checked_threads(ds, threads);
    if (max_iter < 0 || history_size < 1 || max_eval < 1)
        throw py::value_error("max_iter must be >= 0, history_size and max_eval >= 1");
    const LbfgsSettings settings{max_iter,        history_size,  max_eval,       tolerance_grad,
                                 tolerance_change, tolerance_gap, curvature_floor};
    return ds.f32 ? lbfgs_impl<float>(ds, x0, threads, settings)
                  : lbfgs_impl<double>(ds, x0, threads, settings);
}

py::tuple objective(const CheckedDataset& ds, const py::handle& params_obj, int64_t threads) {
    py::array params = checked_params(ds, params_obj);
    threads = checked_threads(ds, threads);
    py::array_t<double> grad(n_params(ds.spec));
    const double value = ds.f32 ? objective_impl<float>(ds, params, grad, threads)
                                : objective_impl<double>(ds, params, grad, threads);
    return py::make_tuple(value, grad);
}

// The Hessian (float64, p x p) of linear or logistic regression on a dense Dataset at float64
// params (objective.hpp dense_hessian), one thread.
template <class T>
void dense_hessian_impl(const CheckedDataset& ds, const double* w, double* H) {
    const Dataset<T> data = ds.view<T>();
    std::vector<double> rows(size_t(4 * ds.spec.n_features));
    StopCheck stop;
    stop.poll = &poll_signals;
    {
        py::gil_scoped_release release;
        dispatch::kernels().of<T>().dense_hessian(ds.spec, data, w, H, rows.data(), stop);
    }
    raise_if_stopped(stop.stopped);
}

py::array_t<double> hessian(const CheckedDataset& ds, const py::handle& params_obj) {
    const ModelSpec& s = ds.spec;
    if (ds.sparse || s.n_outputs != 1 || s.model == Model::softmax)
        throw py::value_error("hessian takes dense X and one output (linear or logistic "
                              "regression)");
    if ((s.penalty == Penalty::l1 || s.penalty == Penalty::elasticnet) && s.alpha > 0)
        throw py::value_error("the Hessian needs a smooth objective: penalty none or l2, "
                              "not l1 or elasticnet");
    const int64_t p = n_params(s);
    py::array params = require_vector(params_obj, "params", p);
    py::array_t<double> H({p, p});
    double* out = H.mutable_data();
    std::fill(out, out + p * p, 0.0);
    const double* w = static_cast<const double*>(params.data());
    if (ds.f32) dense_hessian_impl<float>(ds, w, out);
    else dense_hessian_impl<double>(ds, w, out);
    return H;
}

// A float64 array of `size` elements, C-contiguous and writeable: SAGA's state, written in
// place.
py::array saga_array(const py::handle& obj, const std::string& what, int64_t size) {
    py::array a = as_ndarray(obj, what);
    if (!a.dtype().equal(py::dtype::of<double>()))
        throw py::type_error(what + " must have dtype float64, got " + dtype_name(a));
    if (a.size() != size)
        throw py::value_error(what + " must have " + std::to_string(size) + " elements, got " +
                              shape_str(a));
    require_c_contiguous(a, what);
    require_writeable(a, what);
    return a;
}

template <class T>
EpochOutcome saga_impl(const CheckedDataset& ds, SagaArrays& arrays, const SagaSpec& e) {
    const Dataset<T> data = ds.view<T>();
    StopCheck stop;
    stop.poll = &poll_signals;
    const auto kernel = dispatch::kernels().of<T>().saga_epoch;
    EpochOutcome out;
    {
        py::gil_scoped_release release;
        out = kernel(ds.spec, data, e, arrays, stop);
    }
    raise_if_stopped(out.status == EpochStatus::interrupted);
    return out;
}

// Only O(1) checks, plus the epoch's scratch (the visiting order, a row, the columns' steps).
py::tuple saga_epoch(const CheckedDataset& ds, const py::handle& w_obj,
                     const py::handle& table_obj, const py::handle& sums_obj, double step,
                     uint64_t seed, uint64_t epoch) {
    const int64_t p = n_params(ds.spec);
    py::array w = saga_array(w_obj, "w", p);
    py::array table = saga_array(table_obj, "table", ds.n * ds.spec.n_outputs);
    py::array sums = saga_array(sums_obj, "sums", p);
    require_disjoint({span_of(w, "w"), span_of(table, "table"), span_of(sums, "sums")});
    if (!(step > 0.0) || !std::isfinite(step))
        throw py::value_error("step must be a positive finite number");
    if (ds.n > int64_t(0xFFFFFFFF))
        throw py::value_error("SAGA's shuffle handles up to 2**32 - 1 rows");
    if (ds.sparse && !ds.unique_columns)
        throw py::value_error("SAGA needs CSR X with sorted, unique column indices in every "
                              "row (X.sum_duplicates(); X.sort_indices())");
    std::vector<uint32_t> order(size_t(ds.n));
    std::vector<double> row(size_t(ds.spec.n_features)), scores(size_t(ds.spec.n_outputs));
    std::vector<int64_t> last(size_t(ds.spec.n_features));
    // Sparse X with an L2 part: the columns' decay over each possible wait, once an epoch.
    const bool decays = ds.sparse && !ds.standardized() && ds.spec.penalty != Penalty::none &&
                        ds.spec.alpha * (1.0 - l1_share(ds.spec)) != 0.0;
    std::vector<double> decay(decays ? size_t(ds.n) + 1 : 0);
    SagaArrays arrays{static_cast<double*>(w.mutable_data()),
                      static_cast<double*>(table.mutable_data()),
                      static_cast<double*>(sums.mutable_data()), order.data(), row.data(),
                      last.data(), scores.data(), decays ? decay.data() : nullptr};
    const SagaSpec e{step, seed, epoch};
    const EpochOutcome out = ds.f32 ? saga_impl<float>(ds, arrays, e)
                                    : saga_impl<double>(ds, arrays, e);
    return py::make_tuple(out.loss_sum, out.steps, static_cast<int>(out.status),
                          out.failed_step);
}

// v -> H(w) v for the full objective of a Dataset at w: the rows' curvature at w is computed
// once, at construction (one pass over X); each product is then one pass (objective.hpp).
class HessianOperator {
   public:
    HessianOperator(py::object data, const py::handle& params_obj, int64_t threads)
        : data_(std::move(data)), ds_(data_.cast<const CheckedDataset&>()) {
        const ModelSpec& s = ds_.spec;
        if ((s.penalty == Penalty::l1 || s.penalty == Penalty::elasticnet) && s.alpha > 0)
            throw py::value_error("the Hessian needs a smooth objective: penalty none or l2, "
                                  "not l1 or elasticnet");
        py::array params = checked_params(ds_, params_obj);
        threads_ = checked_threads(ds_, threads);
        lanes_ = pass_memory(ds_, threads_);
        center_.resize(size_t(s.n_outputs));
        std::vector<double> w(size_t(n_params(s)));
        curvature_.resize(size_t(ds_.n * baseline::curvature_width(s)));
        if (ds_.f32) curvature<float>(params, w.data());
        else curvature<double>(params, w.data());
    }

    py::array_t<double> apply(const py::handle& v_obj) {
        const int64_t p = n_params(ds_.spec);
        py::array v = require_vector(v_obj, "v", p);
        py::array_t<double> out(p);
        const double* vp = static_cast<const double*>(v.data());
        double* op = out.mutable_data();
        if (ds_.f32) product<float>(vp, op);
        else product<double>(vp, op);
        return out;
    }

   private:
    // The Dataset's view is taken with the GIL held (it reads the dtypes of CSR's arrays).
    template <class T>
    void curvature(const py::array& params, double* w) {
        const Dataset<T> data = ds_.view<T>();
        StopCheck stop;
        stop.poll = &poll_signals;
        {
            py::gil_scoped_release release;
            dispatch::kernels().of<T>().hessian_curvature(
                ds_.spec, data, static_cast<const T*>(params.data()), w, center_.data(),
                curvature_.data(), lanes_.data(), threads_, stop);
        }
        raise_if_stopped(stop.stopped);
    }

    template <class T>
    void product(const double* v, double* out) {
        const Dataset<T> data = ds_.view<T>();
        StopCheck stop;
        stop.poll = &poll_signals;
        {
            py::gil_scoped_release release;
            dispatch::kernels().of<T>().hessian_product(ds_.spec, data, curvature_.data(), v,
                                                        out, center_.data(), lanes_.data(),
                                                        threads_, stop);
        }
        raise_if_stopped(stop.stopped);
    }

    py::object data_;  // keeps the Dataset (and its arrays) alive
    const CheckedDataset& ds_;
    int64_t threads_ = 1;
    AlignedDoubles lanes_;
    std::vector<double> center_, curvature_;
};

py::array_t<uint32_t> shuffled_order(int64_t n, uint64_t seed, uint64_t epoch,
                                     int64_t batch_size) {
    if (n < 0 || n > int64_t(0xFFFFFFFF))
        throw py::value_error("n must be in [0, 2**32 - 1]");
    if (batch_size < 0) throw py::value_error("batch_size must be >= 0");
    py::array_t<uint32_t> order(n);
    uint32_t* out = order.mutable_data();
    {
        py::gil_scoped_release release;
        if (batch_size > 0)
            baseline::shuffled_batch_order(out, uint64_t(n), uint64_t(batch_size), seed, epoch);
        else
            baseline::shuffled_order(out, uint64_t(n), seed, epoch);
    }
    return order;
}

// A dense, C-contiguous, 2-D float32 or float64 X for the helpers below; `f32` says which.
py::array dense_X(const py::handle& X_in, bool& f32) {
    py::array X = as_ndarray(X_in, "X");
    f32 = X.dtype().equal(py::dtype::of<float>());
    if (!f32 && !X.dtype().equal(py::dtype::of<double>()))
        throw py::type_error("X must have dtype float32 or float64, got " + dtype_name(X));
    if (X.ndim() != 2) throw py::value_error("X must be 2-D, got shape " + shape_str(X));
    require_c_contiguous(X, "X");
    return X;
}

double read_rows(const py::handle& X_in, const py::handle& order_in) {
    bool f32;
    py::array X = dense_X(X_in, f32);
    py::array order = as_ndarray(order_in, "order");
    if (!order.dtype().equal(py::dtype::of<uint32_t>()) || order.ndim() != 1)
        throw py::type_error("order must be a 1-D uint32 array (fastopt._core.shuffled_order)");
    require_c_contiguous(order, "order");
    const int64_t n = X.shape(0), d = X.shape(1), count = order.shape(0);
    const uint32_t* rows = static_cast<const uint32_t*>(order.data());
    if (std::any_of(rows, rows + count, [n](uint32_t r) { return int64_t(r) >= n; }))
        throw py::value_error("order has a row index past the rows of X");
    const int64_t near = prefetch_rows(), far = prefetch_l2_rows(d * (f32 ? 4 : 8));
    py::gil_scoped_release release;
    if (f32)
        return baseline::read_rows(static_cast<const float*>(X.data()), d, rows, count, near,
                                   far);
    return baseline::read_rows(static_cast<const double*>(X.data()), d, rows, count, near, far);
}

py::tuple column_moments(const py::handle& X_in, const py::handle& weights_in) {
    bool f32;
    py::array X = dense_X(X_in, f32);
    const int64_t n = X.shape(0), d = X.shape(1);
    const double* weights =
        weights_in.is_none()
            ? nullptr
            : static_cast<const double*>(require_vector(weights_in, "sample_weight", n).data());
    py::array_t<double> mean(d), m2(d);
    std::vector<double> scratch(static_cast<size_t>(2 * d));
    double* mean_out = mean.mutable_data();
    double* m2_out = m2.mutable_data();
    std::fill(mean_out, mean_out + d, 0.0);
    std::fill(m2_out, m2_out + d, 0.0);
    {
        py::gil_scoped_release release;
        if (f32)
            baseline::column_moments(static_cast<const float*>(X.data()), n, d, weights,
                                     mean_out, m2_out, scratch.data());
        else
            baseline::column_moments(static_cast<const double*>(X.data()), n, d, weights,
                                     mean_out, m2_out, scratch.data());
    }
    return py::make_tuple(mean, m2);
}

}  // namespace

void register_training(py::module_& m) {
    py::enum_<Model>(m, "Model")
        .value("linear", Model::linear)
        .value("logistic", Model::logistic)
        .value("softmax", Model::softmax);
    py::enum_<Penalty>(m, "Penalty")
        .value("none", Penalty::none)
        .value("l2", Penalty::l2)
        .value("l1", Penalty::l1)
        .value("elasticnet", Penalty::elasticnet);
    py::class_<ModelSpec>(m, "ModelSpec")
        .def(py::init<>())
        .def_readwrite("model", &ModelSpec::model)
        .def_readwrite("n_features", &ModelSpec::n_features)
        .def_readwrite("n_outputs", &ModelSpec::n_outputs)
        .def_readwrite("fit_intercept", &ModelSpec::fit_intercept)
        .def_readwrite("penalty", &ModelSpec::penalty)
        .def_readwrite("alpha", &ModelSpec::alpha)
        .def_readwrite("l1_ratio", &ModelSpec::l1_ratio);

    py::class_<CheckedDataset>(m, "Dataset",
                               "The data of one fit, checked once: the compiled epochs and "
                               "objective read it without checking it again.")
        .def(py::init<const ModelSpec&, const py::handle&, const py::handle&,
                      const py::handle&, const py::handle&, const py::handle&>(),
             py::arg("spec"), py::arg("X"), py::arg("y"), py::arg("sample_weight") = py::none(),
             py::arg("mean") = py::none(), py::arg("inv_std") = py::none(),
             "X: a C-contiguous 2-D float32/float64 array, or CSR as (data, indices, indptr, "
             "n_features); y, sample_weight, mean, inv_std: float64 vectors (or None). Checks "
             "shapes, dtypes, softmax labels and CSR indices once, keeps the arrays (which must "
             "not change while in use) and reads the FASTOPT_* tuning variables now.")
        .def_property_readonly("n_samples", [](const CheckedDataset& d) { return d.n; })
        .def_property_readonly("n_features",
                               [](const CheckedDataset& d) { return d.spec.n_features; })
        .def_property_readonly("sparse", [](const CheckedDataset& d) { return d.sparse; })
        .def_property_readonly(
            "unique_columns", [](const CheckedDataset& d) { return d.unique_columns; },
            "CSR X whose rows' columns strictly increase (the batch-1 lazy SGD loop needs it).")
        .def_property_readonly("dtype", [](const CheckedDataset& d) { return d.X.dtype(); })
        .def_property_readonly("tuning", [](const CheckedDataset& d) {
            py::dict out;
            out["prefetch_rows"] = d.near_rows;
            out["prefetch_l2_rows"] = d.far_rows;
            out["row_blocks"] = d.blocks;
            out["row_chunk"] = d.chunk;
            return out;
        }, "The row loops' tuning knobs as read at construction (bench/README.md).");

    m.def("run_epoch", &run_epoch, py::arg("data"), py::arg("params"), py::arg("optimizer"),
          py::arg("state"), py::arg("step"), py::arg("mu_product"), py::arg("batch_size"),
          py::arg("shuffle"), py::arg("seed"), py::arg("epoch"), py::arg("lrs"),
          py::arg("threads") = 1, py::arg("lazy") = false, py::arg("shuffle_batches") = false,
          "One epoch on a Dataset, in place; `threads` > 1 splits every minibatch into that "
          "many lanes, one thread each; `shuffle_batches`: blocks of batch_size rows in a "
          "shuffled order instead of shuffled rows. Returns (loss_sum, steps, status, "
          "failed_step, step, mu_product); status 0 ok, 1 non-finite loss or parameters at "
          "failed_step.");
    m.def("saga_epoch", &saga_epoch, py::arg("data"), py::arg("w"), py::arg("table"),
          py::arg("sums"), py::arg("step"), py::arg("seed"), py::arg("epoch"),
          "One SAGA epoch (fastopt/reference/saga.py) on a Dataset: float64 w (n_params), table "
          "(n * n_outputs) and sums (n_params) updated in place, rows in shuffled_order(n, "
          "seed, epoch). Returns (loss_sum, steps, status, failed_step); status 0 ok, 1 "
          "non-finite loss or parameters at failed_step.");
    m.def("run_many_epoch", &run_many_epoch, py::arg("data"), py::arg("specs"),
          py::arg("params"), py::arg("optimizers"), py::arg("states"), py::arg("step"),
          py::arg("mu_product"), py::arg("batch_size"), py::arg("shuffle"), py::arg("seed"),
          py::arg("epoch"), py::arg("lrs"), py::arg("shuffle_batches") = false,
          "One epoch of K configurations on the same minibatches of a Dataset, in place: "
          "specs (the data's model with each one's penalty), params, optimizers, states, step "
          "and mu_product are lists of K, lrs a (K, steps) float64 array. Each configuration's "
          "updates are run_epoch's, bit for bit; one whose loss or gradient turns non-finite "
          "stops there and the others go on. Returns a list of K (loss_sum, steps, status, "
          "failed_step, step, mu_product).");
    m.def("many_objective", &many_objective, py::arg("data"), py::arg("params"),
          "[objective(data, p)[0] for p in params] within rounding (rows summed in order, "
          "not in objective's blocks), in one pass over dense X with one output (linear, "
          "logistic), else one pass each.");
    m.def("shuffled_order", &shuffled_order, py::arg("n"), py::arg("seed"), py::arg("epoch"),
          py::arg("batch_size") = 0,
          "The rows of a shuffled epoch in visiting order (fastopt/reference/shuffle.py); with "
          "batch_size > 0, blocks of that many rows in a shuffled order (shuffle=\"batches\").");
    m.def("read_rows", &read_rows, py::arg("X"), py::arg("order"),
          "Sum of the rows of X read in `order`, requested ahead as a shuffled epoch requests "
          "them (FASTOPT_PREFETCH_ROWS, FASTOPT_PREFETCH_L2_BYTES): the memory floor of an "
          "epoch, for bench/.");
    m.def("column_moments", &column_moments, py::arg("X"), py::arg("sample_weight"),
          "(mean, m2): per-column weighted mean of X and sum of weighted squared deviations "
          "from it, in float64, in one pass over X; non-finite wherever X is.");
    m.def("objective", &objective, py::arg("data"), py::arg("params"), py::arg("threads") = 1,
          "Full objective over all rows of a Dataset and its float64 gradient: rows in blocks "
          "of a fixed size, `threads` threads, partial sums added in block order (the same "
          "bits for any `threads`).");
    m.def("hessian", &hessian, py::arg("data"), py::arg("params"),
          "The Hessian (float64, p x p) of the objective of a dense Dataset of linear or "
          "logistic regression at float64 params: rows four at a time, one thread.");
    m.def("lbfgs", &lbfgs_fit, py::arg("data"), py::arg("x0"), py::arg("threads"),
          py::arg("max_iter"), py::arg("history_size"), py::arg("max_eval"),
          py::arg("tolerance_grad"), py::arg("tolerance_change"), py::arg("tolerance_gap"),
          py::arg("curvature_floor"),
          "fastopt.solvers.lbfgs on the objective of a Dataset, the loop compiled: a dict "
          "with reason and detail (fastopt.solvers maps them to status and message), n_iter, "
          "n_evals, f, x (X's dtype), g, the history per iteration (loss, grad_max, step, gap, "
          "seconds, evals), pairs and curvatures.");
    py::class_<HessianOperator>(m, "HessianOperator",
                                "v -> H(params) v for the full objective of a Dataset (penalty "
                                "none or l2): the rows' curvature at params is computed once, "
                                "here; each product is one pass over X, summed as objective's. "
                                "It keeps scratch memory: one operator must not be called from "
                                "two threads at once.")
        .def(py::init<py::object, const py::handle&, int64_t>(), py::arg("data"),
             py::arg("params"), py::arg("threads") = 1)
        .def("__call__", &HessianOperator::apply, py::arg("v"),
             "H v (float64) for a float64 vector v of n_params values.");
}

}  // namespace fastopt::bindings
