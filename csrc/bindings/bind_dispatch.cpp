// Which instruction-set build of the kernels runs (tests compare them).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "dispatch/dispatch.hpp"

namespace py = pybind11;

namespace fastopt::bindings {

void register_dispatch(py::module_& m) {
    m.def("cpu_target", [] { return std::string(dispatch::kernels().name); },
          "Name of the kernel build in use.");
    m.def("cpu_targets", [] {
        int count = 0;
        const char* const* names = dispatch::available_targets(&count);
        return std::vector<std::string>(names, names + count);
    }, "Kernel builds this CPU can run, widest last.");
    m.def("set_cpu_target", [](const std::string& name) {
        if (!dispatch::set_target(name.c_str()))
            throw py::value_error("unknown or unsupported CPU target '" + name + "'");
    }, py::arg("name"), "Use the kernel build `name` from now on (process-wide).");
}

}  // namespace fastopt::bindings
