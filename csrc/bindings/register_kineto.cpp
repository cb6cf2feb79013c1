#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "kineto/trace_reader.h"

namespace py = pybind11;
using skipnative::kineto::GpuEvent;
using skipnative::kineto::LaunchEvent;
using skipnative::kineto::OpEvent;
using skipnative::kineto::ReadError;
using skipnative::kineto::StepEvent;
using skipnative::kineto::TraceReader;

namespace {

template <class T>
py::array_t<uint8_t> table(const skipnative::kineto::Column<T>& v, py::handle owner) {
  static const uint8_t empty = 0;
  const uint8_t* p = v.empty() ? &empty : reinterpret_cast<const uint8_t*>(v.data());
  return py::array_t<uint8_t>({py::ssize_t(v.size() * sizeof(T))}, {py::ssize_t(1)}, p, owner);
}

// The reader's row dtypes, defined once, on its structs (kineto/trace_reader.h);
// registered on first use, as the session's are, so that importing the module
// does not import numpy.
void register_reader_dtypes() {
  static bool done = false;
  if (done) return;
  done = true;
  PYBIND11_NUMPY_DTYPE(LaunchEvent, ts, dur, correlation, pid, tid, name_id, cbid);
  PYBIND11_NUMPY_DTYPE(GpuEvent, ts, dur, correlation, device, stream, bytes, name_id, kind, grid,
                       block);
  PYBIND11_NUMPY_DTYPE(OpEvent, ts, dur, pid, tid, external_id, parent, top, name_id, depth);
  PYBIND11_NUMPY_DTYPE_EX(StepEvent, ts, "ts", dur, "dur", pid, "pid", tid, "tid", name_id,
                          "name_id", pad, "_pad");
}

}  // namespace

void register_kineto(py::module_& m) {
  py::register_exception<ReadError>(m, "TraceReadError", PyExc_ValueError);
  py::class_<TraceReader>(m, "KinetoReader")
      .def(py::init<>())
      .def("feed",
           [](TraceReader& r, py::bytes chunk) {
             char* data = nullptr;
             Py_ssize_t n = 0;
             PyBytes_AsStringAndSize(chunk.ptr(), &data, &n);
             py::gil_scoped_release nogil;
             r.feed(data, size_t(n));
           })
      .def("finish", &TraceReader::finish, py::call_guard<py::gil_scoped_release>())
      .def("launches",
           [](py::object self) { return table(self.cast<TraceReader&>().launches, self); })
      .def("gpu", [](py::object self) { return table(self.cast<TraceReader&>().gpu, self); })
      .def("ops", [](py::object self) { return table(self.cast<TraceReader&>().ops, self); })
      .def("steps", [](py::object self) { return table(self.cast<TraceReader&>().steps, self); })
      // as bytes: a trace may hold invalid UTF-8, which Python decodes with replacement
      .def("strings",
           [](TraceReader& r) {
             py::list out;
             for (const auto& s : r.names.snapshot()) out.append(py::bytes(s));
             return out;
           })
      .def_readonly("top_level", &TraceReader::top_level)
      .def_readonly("events", &TraceReader::events)
      .def_readonly("ignored_events", &TraceReader::ignored_events);
  m.def("kineto_record_dtypes", [] {
    register_reader_dtypes();
    py::dict d;
    d["launch"] = py::dtype::of<LaunchEvent>();
    d["gpu"] = py::dtype::of<GpuEvent>();
    d["op"] = py::dtype::of<OpEvent>();
    d["step"] = py::dtype::of<StepEvent>();
    return d;
  });
  m.def("kineto_record_sizes", [] {
    py::dict d;
    d["launch"] = sizeof(skipnative::kineto::LaunchEvent);
    d["gpu"] = sizeof(skipnative::kineto::GpuEvent);
    d["op"] = sizeof(skipnative::kineto::OpEvent);
    d["step"] = sizeof(skipnative::kineto::StepEvent);
    return d;
  });
}
