#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstring>
#include <vector>

#include "kineto/trace_reader.h"

namespace py = pybind11;
using skipnative::kineto::GpuEvent;
using skipnative::kineto::LaunchEvent;
using skipnative::kineto::OpEvent;
using skipnative::kineto::ReadError;
using skipnative::kineto::StepEvent;
using skipnative::kineto::TraceReader;
using skipnative::kineto::WaitEvent;

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
  PYBIND11_NUMPY_DTYPE(WaitEvent, ts, dur, correlation, record_correlation, device, stream,
                       on_stream);
}

// Rows of one layout -> rows of another, field by field in one pass over the
// rows (numpy's field-by-field assignment passes over both tables once per
// field). Each step: dst field (offset, size) = src field (offset, size), plus
// the int64 src field at plus_off where plus_off >= 0, plus a constant; fields
// are signed integers of 1, 2, 4 or 8 bytes, narrowed as a C cast does
// (numpy's int casts alike).
using CopyStep = std::array<int64_t, 6>;  // dst_off, dst_size, src_off, src_size, plus_off, plus

int64_t load_int(const char* p, int64_t size) {
  switch (size) {
    case 1:
      return int8_t(*p);
    case 2: {
      int16_t v;
      std::memcpy(&v, p, 2);
      return v;
    }
    case 4: {
      int32_t v;
      std::memcpy(&v, p, 4);
      return v;
    }
    default: {
      int64_t v;
      std::memcpy(&v, p, 8);
      return v;
    }
  }
}

void store_int(char* p, int64_t size, int64_t v) {
  switch (size) {
    case 1:
      *p = char(uint8_t(uint64_t(v)));
      return;
    case 2: {
      uint16_t x = uint16_t(uint64_t(v));
      std::memcpy(p, &x, 2);
      return;
    }
    case 4: {
      uint32_t x = uint32_t(uint64_t(v));
      std::memcpy(p, &x, 4);
      return;
    }
    default:
      std::memcpy(p, &v, 8);
  }
}

void copy_rows(py::array src, int64_t src_item, py::array dst, const std::vector<CopyStep>& plan) {
  const int64_t dst_item = int64_t(dst.itemsize());
  const auto fits = [](int64_t off, int64_t size, int64_t item) {
    return (size == 1 || size == 2 || size == 4 || size == 8) && off >= 0 && off + size <= item;
  };
  if (src_item <= 0 || src.nbytes() % src_item != 0 ||
      int64_t(dst.nbytes()) != int64_t(src.nbytes()) / src_item * dst_item ||
      !(dst.flags() & py::array::c_style) || !(src.flags() & py::array::c_style) ||
      !dst.writeable())
    throw py::value_error("copy_rows: tables of different lengths or not contiguous");
  for (const CopyStep& c : plan)
    if (!fits(c[0], c[1], dst_item) || !fits(c[2], c[3], src_item) ||
        (c[4] >= 0 && !fits(c[4], 8, src_item)))
      throw py::value_error("copy_rows: a field outside its row");
  const char* s = static_cast<const char*>(src.data());
  char* d = static_cast<char*>(dst.mutable_data());
  const int64_t n = int64_t(src.nbytes()) / src_item;
  py::gil_scoped_release nogil;
  for (int64_t r = 0; r < n; ++r, s += src_item, d += dst_item) {
    for (const CopyStep& c : plan) {
      uint64_t v = uint64_t(load_int(s + c[2], c[3]));
      if (c[4] >= 0) v += uint64_t(load_int(s + c[4], 8));  // wraps as numpy's add
      store_int(d + c[0], c[1], int64_t(v + uint64_t(c[5])));
    }
  }
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
      .def("waits", [](py::object self) { return table(self.cast<TraceReader&>().waits, self); })
      // as bytes: a trace may hold invalid UTF-8, which Python decodes with replacement
      .def("strings",
           [](TraceReader& r) {
             py::list out;
             for (const auto& s : r.names.snapshot()) out.append(py::bytes(s));
             return out;
           })
      .def_readonly("top_level", &TraceReader::top_level)
      .def_readonly("top_level_over_cap", &TraceReader::top_level_over_cap)
      .def_readonly_static("max_top_level_bytes", &TraceReader::kMaxTopLevelText)
      .def_readonly("events", &TraceReader::events)
      .def_readonly("ignored_events", &TraceReader::ignored_events)
      // of those, the malformed ones by the field that broke them (trace_reader.h)
      .def_property_readonly("malformed_events", [](const TraceReader& r) {
        py::dict d;
        d["ph"] = r.malformed_ph;
        d["cat"] = r.malformed_cat;
        d["args"] = r.malformed_args;
        return d;
      });
  m.def("kineto_record_dtypes", [] {
    register_reader_dtypes();
    py::dict d;
    d["launch"] = py::dtype::of<LaunchEvent>();
    d["gpu"] = py::dtype::of<GpuEvent>();
    d["op"] = py::dtype::of<OpEvent>();
    d["step"] = py::dtype::of<StepEvent>();
    d["wait"] = py::dtype::of<WaitEvent>();
    return d;
  });
  m.def("copy_rows", &copy_rows, py::arg("src"), py::arg("src_itemsize"), py::arg("dst"),
        py::arg("plan"));
  m.def("kineto_record_sizes", [] {
    py::dict d;
    d["launch"] = sizeof(skipnative::kineto::LaunchEvent);
    d["gpu"] = sizeof(skipnative::kineto::GpuEvent);
    d["op"] = sizeof(skipnative::kineto::OpEvent);
    d["step"] = sizeof(skipnative::kineto::StepEvent);
    d["wait"] = sizeof(skipnative::kineto::WaitEvent);
    return d;
  });
}
