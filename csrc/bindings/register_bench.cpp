#include <pybind11/pybind11.h>

#include "cupti/session.h"

namespace py = pybind11;
using namespace skipnative;

void register_bench(py::module_& m) {
  m.def("bench_record_path", &bench_record_path, py::arg("n"), py::arg("clock") = "auto",
        py::call_guard<py::gil_scoped_release>(),
        "ns per launch record: enter+exit callback into the per-thread buffers");
  m.def("bench_hook_path", &bench_hook_path, py::arg("n"), py::arg("clock") = "auto",
        py::arg("join") = "external", py::call_guard<py::gil_scoped_release>(),
        "ns per hooked launch: the hook sink's enter+exit (clock reads, record; join "
        "'external': CUPTI's external correlation push/pop, 'order': the cached stream lookup)");
  m.def("bench_clock_read", &bench_clock_read, py::arg("n"), py::arg("clock") = "auto",
        py::call_guard<py::gil_scoped_release>(), "ns per bare clock read");
}
