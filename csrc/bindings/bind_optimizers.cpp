// Python entry point for one optimizer update: checks, then the kernel without the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <utility>
#include <vector>

#include "bindings/array_checks.hpp"
#include "dispatch/dispatch.hpp"
#include "fastopt/config.hpp"

namespace py = pybind11;

namespace fastopt::bindings {
namespace {

template <class T>
void run_step(const OptimConfig& c, OptimScalars& s, double lr, py::array& params,
              const py::array& grad, std::vector<py::array>& state) {
    T* bufs[3] = {nullptr, nullptr, nullptr};
    for (size_t i = 0; i < state.size(); ++i) bufs[i] = static_cast<T*>(state[i].mutable_data());
    T* p = static_cast<T*>(params.mutable_data());
    const T* g = static_cast<const T*>(grad.data());
    const int64_t n = static_cast<int64_t>(params.size());
    const auto step = dispatch::kernels().of<T>().optimizer_step;
    py::gil_scoped_release release;
    step(c, s, lr, p, g, bufs, n);
}

// state: {name: array} in the order the kernel expects (fastopt.optim gives it).
py::tuple optimizer_step(const OptimConfig& c, const py::handle& params_obj,
                         const py::handle& grad_obj, const py::dict& state_arrays,
                         int64_t step, double mu_product, double lr) {
    py::array params = as_ndarray(params_obj, "params");
    const bool f32 = params.dtype().equal(py::dtype::of<float>());
    if (!f32 && !params.dtype().equal(py::dtype::of<double>()))
        throw py::type_error("params must have dtype float32 or float64, got " +
                             dtype_name(params));
    require_c_contiguous(params, "params");
    require_writeable(params, "params");
    py::array grad = as_ndarray(grad_obj, "grad");
    require_like(grad, "grad", params, "params");
    require_c_contiguous(grad, "grad");

    std::vector<Span> spans{span_of(params, "params"), span_of(grad, "grad")};
    std::vector<py::array> state = checked_state(state_arrays, state_size(c), params, spans);
    if (step < 0) throw py::value_error("step must be >= 0, got " + std::to_string(step));

    OptimScalars s{step, mu_product};
    if (f32) run_step<float>(c, s, lr, params, grad, state);
    else run_step<double>(c, s, lr, params, grad, state);
    return py::make_tuple(s.step, s.mu_product);
}

}  // namespace

void register_optimizers(py::module_& m) {
    py::enum_<Optim>(m, "Optim")
        .value("sgd", Optim::sgd)
        .value("adagrad", Optim::adagrad)
        .value("rmsprop", Optim::rmsprop)
        .value("adadelta", Optim::adadelta)
        .value("adam", Optim::adam)
        .value("nadam", Optim::nadam)
        .value("radam", Optim::radam);

    py::class_<OptimConfig>(m, "OptimConfig")
        .def(py::init<>())
        .def_readwrite("kind", &OptimConfig::kind)
        .def_readwrite("lr", &OptimConfig::lr)
        .def_readwrite("weight_decay", &OptimConfig::weight_decay)
        .def_readwrite("decoupled_weight_decay", &OptimConfig::decoupled_weight_decay)
        .def_readwrite("momentum", &OptimConfig::momentum)
        .def_readwrite("dampening", &OptimConfig::dampening)
        .def_readwrite("nesterov", &OptimConfig::nesterov)
        .def_readwrite("lr_decay", &OptimConfig::lr_decay)
        .def_readwrite("initial_accumulator_value", &OptimConfig::initial_accumulator_value)
        .def_readwrite("alpha", &OptimConfig::alpha)
        .def_readwrite("centered", &OptimConfig::centered)
        .def_readwrite("rho", &OptimConfig::rho)
        .def_readwrite("beta1", &OptimConfig::beta1)
        .def_readwrite("beta2", &OptimConfig::beta2)
        .def_readwrite("amsgrad", &OptimConfig::amsgrad)
        .def_readwrite("momentum_decay", &OptimConfig::momentum_decay)
        .def_readwrite("eps", &OptimConfig::eps);

    m.def("state_size", &state_size, py::arg("config"),
          "Number of state arrays the kernel for this configuration uses.");
    m.def("optimizer_step", &optimizer_step, py::arg("config"), py::arg("params"),
          py::arg("grad"), py::arg("state"), py::arg("step"), py::arg("mu_product"),
          py::arg("lr"),
          "One in-place update of params and state; returns the new (step, mu_product).");
}

}  // namespace fastopt::bindings
