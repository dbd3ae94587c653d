// Argument checks shared by the bindings. The kernels write through raw pointers, so anything
// pybind11 would silently convert (and so copy) is refused with a message instead: an in-place
// update on a hidden copy would be lost.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

namespace fastopt::bindings {

namespace py = pybind11;

inline std::string type_name(const py::handle& obj) {
    return py::str(py::type::handle_of(obj).attr("__name__")).cast<std::string>();
}

inline std::string dtype_name(const py::array& a) {
    return py::str(a.dtype()).cast<std::string>();
}

inline std::string shape_str(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) {
        s += std::to_string(a.shape(i));
        if (a.ndim() == 1 || i + 1 < a.ndim()) s += a.ndim() == 1 ? "," : ", ";
    }
    return s + ")";
}

// `obj` as an ndarray, or TypeError.
inline py::array as_ndarray(const py::handle& obj, const std::string& what) {
    if (!py::isinstance<py::array>(obj))
        throw py::type_error(what + " must be a numpy.ndarray, got " + type_name(obj));
    return py::reinterpret_borrow<py::array>(obj);
}

inline void require_c_contiguous(const py::array& a, const std::string& what) {
    if (!(a.flags() & py::array::c_style))
        throw py::value_error(what + " must be C-contiguous (use numpy.ascontiguousarray and keep "
                                     "the result): the update is done in place");
}

inline void require_writeable(const py::array& a, const std::string& what) {
    if (!a.writeable())
        throw py::value_error(what + " is read-only; the update is done in place");
}

// Same dtype and shape as `ref` (named `ref_what`).
inline void require_like(const py::array& a, const std::string& what, const py::array& ref,
                         const std::string& ref_what) {
    if (!a.dtype().equal(ref.dtype()))
        throw py::type_error(what + " has dtype " + dtype_name(a) + " but " + ref_what +
                             " has dtype " + dtype_name(ref) + "; they must match");
    bool same = a.ndim() == ref.ndim();
    for (py::ssize_t i = 0; same && i < a.ndim(); ++i) same = a.shape(i) == ref.shape(i);
    if (!same)
        throw py::value_error(what + " has shape " + shape_str(a) + " but " + ref_what +
                              " has shape " + shape_str(ref) + "; they must match");
}

struct Span {
    const char* begin;
    const char* end;
    std::string what;
};

inline Span span_of(const py::array& a, const std::string& what) {
    const char* p = static_cast<const char*>(a.data());
    return {p, p + a.nbytes(), what};
}

// Refuse overlapping memory between arrays that the kernel reads and writes.
inline void require_disjoint(const std::vector<Span>& spans) {
    for (size_t i = 0; i < spans.size(); ++i)
        for (size_t j = i + 1; j < spans.size(); ++j)
            if (spans[i].begin < spans[j].end && spans[j].begin < spans[i].end &&
                spans[i].begin != spans[i].end)
                throw py::value_error(spans[i].what + " and " + spans[j].what +
                                      " share memory; pass separate arrays");
}

// The optimizer state arrays {name: array}, in kernel order: as many as the kernel of `config`
// uses, each like `params`, C-contiguous, writeable and disjoint from everything in `spans`
// (which they join).
inline std::vector<py::array> checked_state(const py::dict& arrays, int expected,
                                            const py::array& params, std::vector<Span>& spans) {
    if (static_cast<int>(arrays.size()) != expected)
        throw py::value_error("this optimizer needs " + std::to_string(expected) +
                              " state arrays, got " + std::to_string(arrays.size()));
    std::vector<py::array> state;
    for (auto item : arrays) {
        const std::string what = "state['" + py::str(item.first).cast<std::string>() + "']";
        py::array a = as_ndarray(item.second, what);
        require_like(a, what, params, "params");
        require_c_contiguous(a, what);
        require_writeable(a, what);
        spans.push_back(span_of(a, what));
        state.push_back(std::move(a));
    }
    require_disjoint(spans);
    return state;
}

}  // namespace fastopt::bindings
