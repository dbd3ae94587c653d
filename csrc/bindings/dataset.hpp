// The data of one fit, checked once (`_core.Dataset`): X (dense, or CSR as its parts), y,
// sample weights and the standardisation, with the tuning knobs of the row loops read once.
// run_epoch and objective then only check what changes between calls (parameters, state,
// learning rates), in O(1): an epoch no longer re-scans the labels and the column indices.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "bindings/array_checks.hpp"
#include "fastopt/config.hpp"

namespace fastopt::bindings {

// A float64 vector of `length` elements, C-contiguous.
inline py::array require_vector(const py::handle& obj, const std::string& what,
                                int64_t length) {
    py::array a = as_ndarray(obj, what);
    if (!a.dtype().equal(py::dtype::of<double>()))
        throw py::type_error(what + " must have dtype float64, got " + dtype_name(a));
    if (a.ndim() != 1 || a.shape(0) != length)
        throw py::value_error(what + " must have shape (" + std::to_string(length) + ",), got " +
                              shape_str(a));
    require_c_contiguous(a, what);
    return a;
}

// The tuning knobs of bench/README.md: an integer environment variable, clamped to
// [low, high]; `fallback` when unset or empty.
inline int64_t knob(const char* name, long fallback, long low, long high) {
    const char* text = std::getenv(name);
    const long value = text && *text ? std::strtol(text, nullptr, 10) : fallback;
    return int64_t(std::min(std::max(value, low), high));
}

// Prefetch distance of dense and shuffled epochs, in rows: FASTOPT_PREFETCH_ROWS (0 turns
// prefetching off), default 4.
inline int64_t prefetch_rows() { return knob("FASTOPT_PREFETCH_ROWS", 4, 0, 64); }

// How far ahead dense epochs request rows into L2, in bytes of X: FASTOPT_PREFETCH_L2_BYTES
// (0 turns it off), default 48 KiB.
inline int64_t prefetch_l2_rows(int64_t row_bytes) {
    const int64_t bytes = knob("FASTOPT_PREFETCH_L2_BYTES", 48 * 1024, 0, 1L << 30);
    if (bytes == 0 || row_bytes <= 0) return 0;
    return std::min<int64_t>(std::max<int64_t>(bytes / row_bytes, 1), 4096);
}

// Whether dense epochs take rows four at a time: where X fits in cache (8 MiB or less) the row
// loop waits on arithmetic, and four rows side by side hide its latency; where rows come from
// memory one at a time keeps more of them in flight (bench/README.md). FASTOPT_ROW_BLOCKS=0|1
// overrides.
inline bool row_blocks(int64_t x_bytes) {
    return knob("FASTOPT_ROW_BLOCKS", x_bytes <= (int64_t(8) << 20) ? 1 : 0, 0, 1) != 0;
}

// Rows whose gradient updates wait for their dot products in dense row-by-row epochs:
// FASTOPT_ROW_CHUNK (0: none, at most 64), default 8 (W1, W2: 8-32 all ~1.05-1.1x faster
// than 0, 64 less; bench/README.md; in-order passes with rows requested stream_ahead_bytes
// ahead: 8 against 16 ~1.08x faster at d = 50 and 400, the same at 100 and 1000).
inline int64_t row_chunk() { return knob("FASTOPT_ROW_CHUNK", 8, 0, 64); }

inline ModelSpec checked_spec(ModelSpec spec) {
    if (spec.n_features < 1 || spec.n_outputs < 1)
        throw py::value_error("n_features and n_outputs must be >= 1");
    if (spec.model != Model::softmax && spec.n_outputs != 1)
        throw py::value_error("linear and logistic models have one output");
    return spec;
}

class CheckedDataset {
   public:
    // X: a 2-D ndarray, or CSR as the tuple (values, indices, indptr, n_columns). Every check
    // that reads whole arrays happens here, once: the label range of softmax y (O(n)) and the
    // column indices and row pointers of CSR X (O(nnz)); a bad index would read outside the
    // parameters. The arrays are kept, not copied: they must not change while in use.
    CheckedDataset(const ModelSpec& spec_in, const py::handle& X_obj, const py::handle& y_obj,
                   const py::handle& weights_obj, const py::handle& mean_obj,
                   const py::handle& inv_std_obj)
        : spec(checked_spec(spec_in)) {
        if (py::isinstance<py::tuple>(X_obj)) {
            check_sparse(py::reinterpret_borrow<py::tuple>(X_obj));
        } else {
            X = as_ndarray(X_obj, "X");
            if (X.ndim() != 2 || X.shape(1) != spec.n_features)
                throw py::value_error("X must have shape (n, " +
                                      std::to_string(spec.n_features) + "), got " +
                                      shape_str(X));
            require_c_contiguous(X, "X");
            n = X.shape(0);
        }
        f32 = X.dtype().equal(py::dtype::of<float>());
        if (!f32 && !X.dtype().equal(py::dtype::of<double>()))
            throw py::type_error("X must have dtype float32 or float64, got " + dtype_name(X));
        if (n < 1) throw py::value_error("X has no rows");
        y = require_vector(y_obj, "y", n);
        if (spec.model == Model::softmax) {
            const double* labels = static_cast<const double*>(y.data());
            for (int64_t i = 0; i < n; ++i)
                if (!(labels[i] >= 0 && labels[i] < double(spec.n_outputs) &&
                      labels[i] == std::floor(labels[i])))
                    throw py::value_error("y must hold class indices in [0, " +
                                          std::to_string(spec.n_outputs) + ")");
        }
        weights = optional_vector(weights_obj, "sample_weight", n, weights_data);
        mean = optional_vector(mean_obj, "mean", spec.n_features, mean_data);
        inv_std = optional_vector(inv_std_obj, "inv_std", spec.n_features, inv_std_data);
        if ((mean_data == nullptr) != (inv_std_data == nullptr))
            throw py::value_error("mean and inv_std go together");
        near_rows = fastopt::bindings::prefetch_rows();
        if (!sparse) {
            const int64_t row_bytes = spec.n_features * int64_t(f32 ? 4 : 8);
            far_rows = fastopt::bindings::prefetch_l2_rows(row_bytes);
            blocks = fastopt::bindings::row_blocks(row_bytes * n);
            chunk = fastopt::bindings::row_chunk();
        }
    }

    // The kernels' view (fastopt/config.hpp); T is X's type (f32).
    template <class T>
    Dataset<T> view() const noexcept {
        Dataset<T> data{sparse ? nullptr : static_cast<const T*>(X.data()),
                        static_cast<const double*>(y.data()),
                        weights_data,
                        mean_data,
                        inv_std_data,
                        n,
                        near_rows};
        if (sparse) {
            data.csr.values = static_cast<const T*>(X.data());
            data.csr.unique_columns = unique_columns;
            if (indices.dtype().equal(py::dtype::of<int64_t>())) {
                data.csr.indices64 = static_cast<const int64_t*>(indices.data());
                data.csr.indptr64 = static_cast<const int64_t*>(indptr.data());
            } else {
                data.csr.indices32 = static_cast<const int32_t*>(indices.data());
                data.csr.indptr32 = static_cast<const int32_t*>(indptr.data());
            }
        } else {
            data.prefetch_l2_rows = far_rows;
            data.row_blocks = blocks;
            data.row_chunk = chunk;
        }
        return data;
    }

    bool standardized() const noexcept { return mean_data != nullptr; }

    ModelSpec spec;
    py::array X;                // dense X, or the values of CSR X
    py::array indices, indptr;  // CSR X only
    py::array y;
    py::object weights, mean, inv_std;  // float64 arrays, or None
    const double* weights_data = nullptr;  // their data, or null
    const double* mean_data = nullptr;
    const double* inv_std_data = nullptr;
    bool sparse = false;
    bool unique_columns = false;  // CSR X: every row's columns strictly increase
    bool f32 = false;
    int64_t n = 0;
    // The tuning knobs, read at construction (FASTOPT_* environment variables).
    int64_t near_rows = 4, far_rows = 0, chunk = 0;
    bool blocks = false;
    // The scratch memory of the objective's passes (bind_training.cpp, KeptScratch), kept from
    // call to call for the thread that holds the mutex: a solver calls the objective tens of
    // times on one dataset, and fresh memory cost a page fault a page.
    std::shared_ptr<std::mutex> pass_mutex = std::make_shared<std::mutex>();
    mutable std::shared_ptr<void> pass_scratch;

   private:
    static py::object optional_vector(const py::handle& obj, const std::string& what,
                                      int64_t length, const double*& data) {
        if (obj.is_none()) return py::none();
        py::array a = require_vector(obj, what, length);
        data = static_cast<const double*>(a.data());
        return std::move(a);
    }

    // Whether every index lies in [0, columns); `increasing`: whether every row's indices
    // strictly increase. Branch-free loops the compiler vectorizes: ~memory speed.
    template <class I>
    static bool scan_indices(const I* indices, const I* indptr, int64_t n, int64_t columns,
                             bool& increasing) noexcept {
        const int64_t nnz = int64_t(indptr[n]);
        I low = 0, high = 0;
        for (int64_t e = 0; e < nnz; ++e) {
            low = std::min(low, indices[e]);
            high = std::max(high, indices[e]);
        }
        unsigned descents = 0;
        for (int64_t r = 0; r < n; ++r)
            for (int64_t e = int64_t(indptr[r]) + 1; e < int64_t(indptr[r + 1]); ++e)
                descents |= unsigned(indices[e] <= indices[e - 1]);
        increasing = descents == 0;
        return low >= 0 && int64_t(high) < columns;
    }

    void check_sparse(const py::tuple& parts) {
        if (parts.size() != 4)
            throw py::value_error("sparse X must be (values, indices, indptr, n_columns)");
        X = as_ndarray(parts[0], "X.data");
        indices = as_ndarray(parts[1], "X.indices");
        indptr = as_ndarray(parts[2], "X.indptr");
        const int64_t columns = parts[3].cast<int64_t>();
        if (columns != spec.n_features)
            throw py::value_error("X must have " + std::to_string(spec.n_features) +
                                  " columns, got " + std::to_string(columns));
        for (auto* a : {&X, &indices, &indptr}) {
            if (a->ndim() != 1) throw py::value_error("sparse X arrays must be 1-D");
            require_c_contiguous(*a, "sparse X");
        }
        const bool i64 = indices.dtype().equal(py::dtype::of<int64_t>());
        if (!(i64 || indices.dtype().equal(py::dtype::of<int32_t>())) ||
            !indptr.dtype().equal(indices.dtype()))
            throw py::type_error("X.indices and X.indptr must both be int32 or both int64");
        const int64_t nnz = X.shape(0);
        n = indptr.shape(0) - 1;
        if (n < 1) throw py::value_error("X has no rows");
        if (indices.shape(0) != nnz)
            throw py::value_error("X.indices and X.data differ in length");
        auto at = [&](const py::array& a, int64_t i) {
            return i64 ? static_cast<const int64_t*>(a.data())[i]
                       : int64_t(static_cast<const int32_t*>(a.data())[i]);
        };
        if (at(indptr, 0) != 0 || at(indptr, n) != nnz)
            throw py::value_error("X.indptr must start at 0 and end at nnz");
        for (int64_t r = 0; r < n; ++r)
            if (at(indptr, r + 1) < at(indptr, r))
                throw py::value_error("X.indptr must be non-decreasing");
        const bool in_range =
            i64 ? scan_indices(static_cast<const int64_t*>(indices.data()),
                               static_cast<const int64_t*>(indptr.data()), n, columns,
                               unique_columns)
                : scan_indices(static_cast<const int32_t*>(indices.data()),
                               static_cast<const int32_t*>(indptr.data()), n, columns,
                               unique_columns);
        if (!in_range)
            throw py::value_error("X.indices out of range [0, " + std::to_string(columns) + ")");
        sparse = true;
    }
};

}  // namespace fastopt::bindings
