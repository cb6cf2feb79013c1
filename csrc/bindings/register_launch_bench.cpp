#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bench/launch_bench.h"

namespace py = pybind11;
using skipnative::bench::Api;
using skipnative::bench::BenchError;
using skipnative::bench::LaunchBench;

void register_launch_bench(py::module_& m) {
  py::register_exception<BenchError>(m, "BenchError", PyExc_RuntimeError);
  py::enum_<Api>(m, "LaunchApi").value("driver", Api::kDriver).value("runtime", Api::kRuntime);
  py::class_<LaunchBench>(m, "LaunchBench")
      .def(py::init<int, const std::vector<std::string>&>(), py::arg("device") = 0,
           py::arg("runtime_dirs") = std::vector<std::string>{})
      .def_property_readonly("has_runtime", &LaunchBench::has_runtime)
      .def_property_readonly("runtime_path", &LaunchBench::runtime_path)
      .def_property_readonly("device_name", &LaunchBench::device_name)
      .def("launch_call", &LaunchBench::launch_call, py::arg("api"), py::arg("n"),
           py::arg("drain") = 64, py::call_guard<py::gil_scoped_release>())
      .def("roundtrip", &LaunchBench::roundtrip, py::call_guard<py::gil_scoped_release>())
      .def("throughput", &LaunchBench::throughput, py::call_guard<py::gil_scoped_release>())
      .def("queue_probe", &LaunchBench::queue_probe, py::call_guard<py::gil_scoped_release>())
      .def("graph_launch", &LaunchBench::graph_launch, py::call_guard<py::gil_scoped_release>())
      .def("stream_launches", &LaunchBench::stream_launches,
           py::call_guard<py::gil_scoped_release>())
      .def("keep_loaded", &LaunchBench::keep_loaded)
      .def("idle_launches", &LaunchBench::idle_launches, py::call_guard<py::gil_scoped_release>());
  m.def("null_kernel_ptx", &skipnative::bench::null_kernel_ptx);
}
