// Python entry points for training: one epoch, and the full objective with its gradient.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "bindings/array_checks.hpp"
#include "dispatch/dispatch.hpp"
#include "fastopt/config.hpp"
#include "fastopt/models.hpp"
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

py::array require_vector(const py::handle& obj, const std::string& what, int64_t length) {
    py::array a = as_ndarray(obj, what);
    if (!a.dtype().equal(py::dtype::of<double>()))
        throw py::type_error(what + " must have dtype float64, got " + dtype_name(a));
    if (a.ndim() != 1 || a.shape(0) != length)
        throw py::value_error(what + " must have shape (" + std::to_string(length) + ",), got " +
                              shape_str(a));
    require_c_contiguous(a, what);
    return a;
}

const double* optional_vector(const py::handle& obj, const std::string& what, int64_t length) {
    if (obj.is_none()) return nullptr;
    return static_cast<const double*>(require_vector(obj, what, length).data());
}

struct Inputs {
    py::array X;  // dense X, or the values of a sparse X
    py::array indices, indptr;  // sparse X (CSR) only
    bool sparse = false;
    py::array params;
    bool f32;
    int64_t n;
};

// CSR X from Python: the tuple (values, indices, indptr, n_columns) of a SciPy CSR matrix.
// Checked in full (O(nnz)): a bad index would read outside the parameters.
void check_sparse(const ModelSpec& spec, const py::tuple& parts, Inputs& in) {
    if (parts.size() != 4)
        throw py::value_error("sparse X must be (values, indices, indptr, n_columns)");
    in.X = as_ndarray(parts[0], "X.data");
    in.indices = as_ndarray(parts[1], "X.indices");
    in.indptr = as_ndarray(parts[2], "X.indptr");
    const int64_t columns = parts[3].cast<int64_t>();
    if (columns != spec.n_features)
        throw py::value_error("X must have " + std::to_string(spec.n_features) +
                              " columns, got " + std::to_string(columns));
    for (auto* a : {&in.X, &in.indices, &in.indptr}) {
        if (a->ndim() != 1) throw py::value_error("sparse X arrays must be 1-D");
        require_c_contiguous(*a, "sparse X");
    }
    const bool i64 = in.indices.dtype().equal(py::dtype::of<int64_t>());
    if (!(i64 || in.indices.dtype().equal(py::dtype::of<int32_t>())) ||
        !in.indptr.dtype().equal(in.indices.dtype()))
        throw py::type_error("X.indices and X.indptr must both be int32 or both int64");
    const int64_t nnz = in.X.shape(0), n = in.indptr.shape(0) - 1;
    if (n < 1) throw py::value_error("X has no rows");
    if (in.indices.shape(0) != nnz)
        throw py::value_error("X.indices and X.data differ in length");
    auto at = [&](const py::array& a, int64_t i) {
        return i64 ? static_cast<const int64_t*>(a.data())[i]
                   : int64_t(static_cast<const int32_t*>(a.data())[i]);
    };
    if (at(in.indptr, 0) != 0 || at(in.indptr, n) != nnz)
        throw py::value_error("X.indptr must start at 0 and end at nnz");
    for (int64_t r = 0; r < n; ++r)
        if (at(in.indptr, r + 1) < at(in.indptr, r))
            throw py::value_error("X.indptr must be non-decreasing");
    for (int64_t e = 0; e < nnz; ++e) {
        const int64_t j = at(in.indices, e);
        if (j < 0 || j >= columns)
            throw py::value_error("X.indices out of range [0, " + std::to_string(columns) + ")");
    }
    in.sparse = true;
    in.n = n;
}

Inputs check_inputs(const ModelSpec& spec, const py::handle& X_obj, const py::handle& y_obj,
                    const py::handle& params_obj) {
    Inputs in;
    py::array X;
    if (py::isinstance<py::tuple>(X_obj)) {
        check_sparse(spec, py::reinterpret_borrow<py::tuple>(X_obj), in);
        X = in.X;
    } else {
        X = as_ndarray(X_obj, "X");
        if (X.ndim() != 2 || X.shape(1) != spec.n_features)
            throw py::value_error("X must have shape (n, " + std::to_string(spec.n_features) +
                                  "), got " + shape_str(X));
        require_c_contiguous(X, "X");
        in.X = X;
        in.n = X.shape(0);
    }
    const bool f32 = X.dtype().equal(py::dtype::of<float>());
    if (!f32 && !X.dtype().equal(py::dtype::of<double>()))
        throw py::type_error("X must have dtype float32 or float64, got " + dtype_name(X));
    const int64_t n = in.n;
    if (n < 1) throw py::value_error("X has no rows");
    py::array y = require_vector(y_obj, "y", n);
    if (spec.model == Model::softmax) {
        const double* labels = static_cast<const double*>(y.data());
        for (int64_t i = 0; i < n; ++i)
            if (!(labels[i] >= 0 && labels[i] < double(spec.n_outputs) &&
                  labels[i] == std::floor(labels[i])))
                throw py::value_error("y must hold class indices in [0, " +
                                      std::to_string(spec.n_outputs) + ")");
    }
    py::array params = as_ndarray(params_obj, "params");
    if (!params.dtype().equal(X.dtype()))
        throw py::type_error("params has dtype " + dtype_name(params) + " but X has dtype " +
                             dtype_name(X) + "; they must match");
    if (params.ndim() != 1 || params.shape(0) != n_params(spec))
        throw py::value_error("params must have shape (" + std::to_string(n_params(spec)) +
                              ",), got " + shape_str(params));
    require_c_contiguous(params, "params");
    in.params = params;
    in.f32 = f32;
    return in;
}

ModelSpec checked_spec(ModelSpec spec) {
    if (spec.n_features < 1 || spec.n_outputs < 1)
        throw py::value_error("n_features and n_outputs must be >= 1");
    if (spec.model != Model::softmax && spec.n_outputs != 1)
        throw py::value_error("linear and logistic models have one output");
    return spec;
}

template <class T>
struct Scratch {
    std::vector<double> params, grad, scores, row, center, residual_sum;
    std::vector<T> grad_t;
    std::vector<uint32_t> order;
    Workspace<T> ws;

    // `order_rows`: n for a shuffled epoch (the visiting order), else 0.
    explicit Scratch(const ModelSpec& s, int64_t order_rows = 0)
        : params(n_params(s)), grad(n_params(s)),
          scores(s.n_outputs), row(size_t(standardized_rows(s.n_features) * s.n_features)),
          center(s.n_outputs), residual_sum(s.n_outputs), grad_t(n_params(s)),
          order(size_t(order_rows)),
          ws{params.data(), grad.data(), grad_t.data(), scores.data(), row.data(), order.data(),
             center.data(), residual_sum.data()} {}
};

// The tuning knobs of bench/README.md: an integer environment variable read at each epoch,
// clamped to [low, high]; `fallback` when unset or empty.
int64_t knob(const char* name, long fallback, long low, long high) {
    const char* text = std::getenv(name);
    const long value = text && *text ? std::strtol(text, nullptr, 10) : fallback;
    return int64_t(std::min(std::max(value, low), high));
}

// Prefetch distance of dense and shuffled epochs, in rows: FASTOPT_PREFETCH_ROWS (0 turns
// prefetching off), default 4.
int64_t prefetch_rows() { return knob("FASTOPT_PREFETCH_ROWS", 4, 0, 64); }

// How far ahead dense epochs request rows into L2, in bytes of X: FASTOPT_PREFETCH_L2_BYTES
// (0 turns it off), default 48 KiB.
int64_t prefetch_l2_rows(int64_t row_bytes) {
    const int64_t bytes = knob("FASTOPT_PREFETCH_L2_BYTES", 48 * 1024, 0, 1L << 30);
    if (bytes == 0 || row_bytes <= 0) return 0;
    return std::min<int64_t>(std::max<int64_t>(bytes / row_bytes, 1), 4096);
}

// Whether dense epochs take rows four at a time: where X fits in cache (8 MiB or less) the row
// loop waits on arithmetic, and four rows side by side hide its latency; where rows come from
// memory one at a time keeps more of them in flight (bench/README.md). FASTOPT_ROW_BLOCKS=0|1
// overrides.
bool row_blocks(int64_t x_bytes) {
    return knob("FASTOPT_ROW_BLOCKS", x_bytes <= (int64_t(8) << 20) ? 1 : 0, 0, 1) != 0;
}

// Rows whose gradient updates wait for their dot products in dense row-by-row epochs:
// FASTOPT_ROW_CHUNK (0: none, at most 64), default 16 (W1, W2: 8-32 all ~1.05-1.1x faster
// than 0, 64 less; bench/README.md).
int64_t row_chunk() { return knob("FASTOPT_ROW_CHUNK", 16, 0, 64); }

template <class T>
Dataset<T> dataset(const Inputs& in, const py::handle& y, const double* weights,
                   const double* mean, const double* inv_std) {
    Dataset<T> data{in.sparse ? nullptr : static_cast<const T*>(in.X.data()),
                    static_cast<const double*>(py::reinterpret_borrow<py::array>(y).data()),
                    weights, mean, inv_std, in.n, prefetch_rows()};
    if (in.sparse) {
        data.csr.values = static_cast<const T*>(in.X.data());
        if (in.indices.dtype().equal(py::dtype::of<int64_t>())) {
            data.csr.indices64 = static_cast<const int64_t*>(in.indices.data());
            data.csr.indptr64 = static_cast<const int64_t*>(in.indptr.data());
        } else {
            data.csr.indices32 = static_cast<const int32_t*>(in.indices.data());
            data.csr.indptr32 = static_cast<const int32_t*>(in.indptr.data());
        }
    } else {
        const int64_t row_bytes = int64_t(in.X.shape(1)) * int64_t(sizeof(T));
        data.prefetch_l2_rows = prefetch_l2_rows(row_bytes);
        data.row_blocks = row_blocks(row_bytes * in.n);
        data.row_chunk = row_chunk();
    }
    return data;
}

template <class T>
EpochOutcome epoch_impl(const ModelSpec& spec, Inputs& in, const py::handle& y,
                        const double* weights, const double* mean, const double* inv_std,
                        const OptimConfig& opt, OptimScalars& scalars,
                        std::vector<py::array>& state, const EpochSpec& e) {
    Scratch<T> scratch(spec, e.shuffle ? in.n : 0);
    T* bufs[3] = {nullptr, nullptr, nullptr};
    for (size_t i = 0; i < state.size(); ++i) bufs[i] = static_cast<T*>(state[i].mutable_data());
    T* w = static_cast<T*>(in.params.mutable_data());
    const Dataset<T> data = dataset<T>(in, y, weights, mean, inv_std);
    StopCheck stop;
    stop.poll = &poll_signals;
    const auto kernel = dispatch::kernels().of<T>().run_epoch;
    EpochOutcome out;
    {
        py::gil_scoped_release release;
        out = kernel(spec, data, opt, scalars, w, bufs, e, scratch.ws, stop);
    }
    if (out.status == EpochStatus::interrupted) {
        if (!PyErr_Occurred()) PyErr_SetNone(PyExc_KeyboardInterrupt);
        throw py::error_already_set();
    }
    return out;
}

py::tuple run_epoch(const ModelSpec& spec_in, const py::handle& X, const py::handle& y,
                    const py::handle& sample_weight, const py::handle& mean,
                    const py::handle& inv_std, const py::handle& params,
                    const OptimConfig& opt, const py::dict& state_arrays, int64_t step,
                    double mu_product, int64_t batch_size, bool shuffle, uint64_t seed,
                    uint64_t epoch, const py::handle& lrs_obj, int64_t threads, bool lazy,
                    bool shuffle_batches) {
    const ModelSpec spec = checked_spec(spec_in);
    Inputs in = check_inputs(spec, X, y, params);
    require_writeable(in.params, "params");
    if (batch_size < 1) throw py::value_error("batch_size must be >= 1");
    if (threads < 1 || threads > 256) throw py::value_error("threads must be in [1, 256]");
    if (shuffle && in.n > int64_t(0xFFFFFFFF))
        throw py::value_error("the shuffle handles up to 2**32 - 1 rows; pass shuffle=False or "
                              "train on chunks with partial_fit");
    const int64_t steps = (in.n + batch_size - 1) / batch_size;
    py::array lrs = require_vector(lrs_obj, "lrs", steps);
    const double* weights = optional_vector(sample_weight, "sample_weight", in.n);
    const double* mu = optional_vector(mean, "mean", spec.n_features);
    const double* inv = optional_vector(inv_std, "inv_std", spec.n_features);
    if ((mu == nullptr) != (inv == nullptr))
        throw py::value_error("mean and inv_std go together");

    std::vector<Span> spans{span_of(in.params, "params"), span_of(in.X, "X")};
    std::vector<py::array> state = checked_state(state_arrays, state_size(opt), in.params, spans);

    OptimScalars scalars{step, mu_product};
    if (lazy && !(in.sparse && mu == nullptr))
        throw py::value_error("lazy updates need sparse, unstandardised X");
    const EpochSpec e{batch_size, shuffle, seed, epoch, static_cast<const double*>(lrs.data()),
                      threads, lazy, shuffle && shuffle_batches};
    const EpochOutcome out =
        in.f32 ? epoch_impl<float>(spec, in, y, weights, mu, inv, opt, scalars, state, e)
               : epoch_impl<double>(spec, in, y, weights, mu, inv, opt, scalars, state, e);
    return py::make_tuple(out.loss_sum, out.steps, static_cast<int>(out.status),
                          out.failed_step, scalars.step, scalars.mu_product);
}

template <class T>
double objective_impl(const ModelSpec& spec, const Inputs& in, const py::handle& y,
                      const double* weights, const double* mean, const double* inv_std,
                      py::array_t<double>& grad) {
    Scratch<T> scratch(spec);
    const Dataset<T> data = dataset<T>(in, y, weights, mean, inv_std);
    StopCheck stop;
    stop.poll = &poll_signals;
    const auto kernel = dispatch::kernels().of<T>().objective;
    const T* w = static_cast<const T*>(in.params.data());
    double value;
    {
        py::gil_scoped_release release;
        value = kernel(spec, data, w, scratch.ws, stop);
    }
    if (stop.stopped) {
        if (!PyErr_Occurred()) PyErr_SetNone(PyExc_KeyboardInterrupt);
        throw py::error_already_set();
    }
    std::copy(scratch.grad.begin(), scratch.grad.end(), grad.mutable_data());
    return value;
}

py::tuple objective(const ModelSpec& spec_in, const py::handle& X, const py::handle& y,
                    const py::handle& sample_weight, const py::handle& mean,
                    const py::handle& inv_std, const py::handle& params) {
    const ModelSpec spec = checked_spec(spec_in);
    Inputs in = check_inputs(spec, X, y, params);
    const double* weights = optional_vector(sample_weight, "sample_weight", in.n);
    const double* mu = optional_vector(mean, "mean", spec.n_features);
    const double* inv = optional_vector(inv_std, "inv_std", spec.n_features);
    if ((mu == nullptr) != (inv == nullptr))
        throw py::value_error("mean and inv_std go together");
    py::array_t<double> grad(n_params(spec));
    const double value = in.f32 ? objective_impl<float>(spec, in, y, weights, mu, inv, grad)
                                : objective_impl<double>(spec, in, y, weights, mu, inv, grad);
    return py::make_tuple(value, grad);
}

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

// The floor of a shuffled epoch (bench/): the rows of X read in `order`, requested ahead at
// the epoch's two distances (prefetch_row), and summed, with no other work. What an epoch spends
// beyond this is arithmetic and bookkeeping; this itself is bound by the memory system.
template <class T>
double read_rows_impl(const T* X, int64_t d, const uint32_t* order, int64_t count, int64_t near,
                      int64_t far) noexcept {
    double acc[4] = {0.0, 0.0, 0.0, 0.0};
    for (int64_t pos = 0; pos < count; ++pos) {
        if (far > 0 && pos + far < count) baseline::prefetch_row(X, order[pos + far], d, true);
        if (near > 0 && pos + near < count) baseline::prefetch_row(X, order[pos + near], d);
        const T* x = X + int64_t(order[pos]) * d;
        int64_t j = 0;
        for (; j + 4 <= d; j += 4)
            for (int l = 0; l < 4; ++l) acc[l] += double(x[j + l]);
        for (; j < d; ++j) acc[0] += double(x[j]);
    }
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
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
    return f32 ? read_rows_impl(static_cast<const float*>(X.data()), d, rows, count, near, far)
               : read_rows_impl(static_cast<const double*>(X.data()), d, rows, count, near, far);
}

// sums[j] += w_r * x_rj for `count` rows from `first`, row after row; with `squares`, the
// squared deviations w_r * (x_rj - center_j)^2 instead.
template <int count, bool squares, class T>
void add_rows(const T* X, int64_t d, const double* weights, int64_t first,
              const double* __restrict center, double* __restrict sums) noexcept {
    const T* x[count];
    double w[count];
    for (int k = 0; k < count; ++k) {
        x[k] = X + (first + k) * d;
        w[k] = weights ? weights[first + k] : 1.0;
    }
    for (int64_t j = 0; j < d; ++j) {
        double acc = sums[j];
        for (int k = 0; k < count; ++k) {
            if constexpr (squares) {
                const double dev = double(x[k][j]) - center[j];
                acc += w[k] * (dev * dev);
            } else {
                acc += w[k] * double(x[k][j]);
            }
        }
        sums[j] = acc;
    }
}

// Weighted per-column mean and sum of squared deviations (standardize=True), one pass over X:
// each block of rows is summed twice while it is in cache (its mean, then its squares about that
// mean), and the blocks merge by Chan et al.'s pairwise update, which is as accurate as two
// passes over X. NumPy's two passes in row blocks took ~5x an epoch (W1); this reads X once.
// A NaN or inf anywhere makes its column's results non-finite, also in a row of weight zero
// (0 * inf is NaN): finite results prove X finite.
template <class T>
void column_moments_impl(const T* X, int64_t n, int64_t d, const double* weights, double* mean,
                         double* m2) noexcept {
    const int64_t block = std::max<int64_t>(1, (int64_t(1) << 15) / std::max<int64_t>(d, 1));
    std::vector<double> scratch(static_cast<size_t>(2 * d));
    double* block_mean = scratch.data();
    double* block_m2 = block_mean + d;
    double total = 0.0;
    for (int64_t lo = 0; lo < n; lo += block) {
        const int64_t hi = std::min(n, lo + block);
        std::fill(block_mean, block_mean + 2 * d, 0.0);
        double block_total = 0.0;
        for (int64_t r = lo; r < hi; ++r) block_total += weights ? weights[r] : 1.0;
        // Four rows per sweep over the columns: the sums run row after row as one at a time
        // would, with a quarter of the loads and stores of the column sums.
        int64_t r = lo;
        for (; r + 4 <= hi; r += 4) add_rows<4, false>(X, d, weights, r, nullptr, block_mean);
        for (; r < hi; ++r) add_rows<1, false>(X, d, weights, r, nullptr, block_mean);
        if (block_total == 0.0) {  // rows removed by weight zero: only their NaN/inf count
            for (int64_t j = 0; j < d; ++j) m2[j] += block_mean[j];
            continue;
        }
        for (int64_t j = 0; j < d; ++j) block_mean[j] /= block_total;
        for (r = lo; r + 4 <= hi; r += 4) add_rows<4, true>(X, d, weights, r, block_mean, block_m2);
        for (; r < hi; ++r) add_rows<1, true>(X, d, weights, r, block_mean, block_m2);
        const double merged = total + block_total;
        const double share = block_total / merged, cross = total * share;
        for (int64_t j = 0; j < d; ++j) {
            const double delta = block_mean[j] - mean[j];
            mean[j] += delta * share;
            m2[j] += block_m2[j] + delta * delta * cross;
        }
        total = merged;
    }
}

py::tuple column_moments(const py::handle& X_in, const py::handle& weights_in) {
    bool f32;
    py::array X = dense_X(X_in, f32);
    const int64_t n = X.shape(0), d = X.shape(1);
    const double* weights = optional_vector(weights_in, "sample_weight", n);
    py::array_t<double> mean(d), m2(d);
    double* mean_out = mean.mutable_data();
    double* m2_out = m2.mutable_data();
    std::fill(mean_out, mean_out + d, 0.0);
    std::fill(m2_out, m2_out + d, 0.0);
    {
        py::gil_scoped_release release;
        if (f32)
            column_moments_impl(static_cast<const float*>(X.data()), n, d, weights, mean_out,
                                m2_out);
        else
            column_moments_impl(static_cast<const double*>(X.data()), n, d, weights, mean_out,
                                m2_out);
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

    m.def("run_epoch", &run_epoch, py::arg("spec"), py::arg("X"), py::arg("y"),
          py::arg("sample_weight"), py::arg("mean"), py::arg("inv_std"), py::arg("params"),
          py::arg("optimizer"), py::arg("state"), py::arg("step"), py::arg("mu_product"),
          py::arg("batch_size"), py::arg("shuffle"), py::arg("seed"), py::arg("epoch"),
          py::arg("lrs"), py::arg("threads") = 1, py::arg("lazy") = false,
          py::arg("shuffle_batches") = false,
          "One epoch in place; `threads` > 1 splits every minibatch into that many lanes, one "
          "thread each; `shuffle_batches`: blocks of batch_size rows in a shuffled order instead "
          "of shuffled rows. Returns (loss_sum, steps, status, failed_step, step, mu_product);"
          " status 0 ok, 1 non-finite loss or parameters at failed_step.");
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
    m.def("objective", &objective, py::arg("spec"), py::arg("X"), py::arg("y"),
          py::arg("sample_weight"), py::arg("mean"), py::arg("inv_std"), py::arg("params"),
          "Full objective over all rows and its float64 gradient.");
}

}  // namespace fastopt::bindings
