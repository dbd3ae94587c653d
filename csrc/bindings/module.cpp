#include <pybind11/pybind11.h>

namespace py = pybind11;

namespace fastopt::bindings {
void register_optimizers(py::module_& m);
void register_dispatch(py::module_& m);
void register_training(py::module_& m);
}  // namespace fastopt::bindings

PYBIND11_MODULE(_core, m) {
    m.doc() = "fastopt's compiled kernels (private; use the fastopt package)";
    fastopt::bindings::register_optimizers(m);
    fastopt::bindings::register_dispatch(m);
    fastopt::bindings::register_training(m);
}
