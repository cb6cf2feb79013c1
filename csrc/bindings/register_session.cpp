#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <climits>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/records.h"
#include "cupti/api_table.h"
#include "cupti/loader.h"
#include "cupti/metadata.h"
#include "cupti/session.h"

namespace py = pybind11;
using namespace skipnative;

namespace {

// The one definition of the record tables' dtypes: the row structs of
// core/records.h, field for field (offsets from the compiler). Registered on
// first use, not at import: registering imports numpy, which the Kineto
// reader's parse does not need (its caller imports numpy meanwhile).
void register_record_dtypes() {
  static bool done = false;
  if (done) return;
  done = true;
  PYBIND11_NUMPY_DTYPE_EX(LaunchRow, t_begin, "t_begin", t_end, "t_end", correlation_id,
                          "correlation", tid, "tid", cbid, "cbid", domain, "domain", kind, "kind",
                          pad, "_pad");
  PYBIND11_NUMPY_DTYPE_EX(KernelRow, t_start, "t_start", t_end, "t_end", t_queued, "t_queued",
                          t_submitted, "t_submitted", graph_node_id, "graph_node_id",
                          correlation_id, "correlation", name_id, "name_id", device, "device",
                          stream, "stream", graph_id, "graph_id", grid, "grid", block, "block", pad,
                          "_pad");
  PYBIND11_NUMPY_DTYPE_EX(CopyRow, t_start, "t_start", t_end, "t_end", bytes, "bytes",
                          graph_node_id, "graph_node_id", correlation_id, "correlation", device,
                          "device", stream, "stream", graph_id, "graph_id", is_set, "is_set",
                          copy_kind, "copy_kind", pad, "_pad", pad2, "_pad2");
  PYBIND11_NUMPY_DTYPE_EX(MarkerRow, t, "t", name_id, "name_id", tid, "tid");
  PYBIND11_NUMPY_DTYPE_EX(EventRow, sync_id, "sync_id", correlation_id, "correlation", context_id,
                          "context", stream, "stream", event_id, "event_id", device, "device", kind,
                          "kind", pad, "_pad");
}

// A result table as a numpy structured array (the dtype registered for its row
// struct in register_record_dtypes), viewing the session's vector: `owner`
// keeps it alive. Read-only: every later view, and the trace built from them,
// reads the same rows. Refused until stop() has finished: the buffer callbacks
// grow (and reallocate) the vectors until then.
template <class T>
py::array_t<T> table_view(const std::vector<T>& (Session::*table)() const, py::object owner) {
  register_record_dtypes();
  const Session& s = owner.cast<const Session&>();
  if (s.active())
    throw SessionError(
        "the capture is running: its tables exist after stop() (the buffer callbacks still "
        "append to them)");
  if (!s.finished())
    throw SessionError("the capture has not started: its tables exist after stop()");
  const std::vector<T>& v = (s.*table)();
  static const T empty{};
  py::array_t<T> a({py::ssize_t(v.size())}, {py::ssize_t(sizeof(T))}, v.empty() ? &empty : v.data(),
                   owner);
  a.attr("setflags")(py::arg("write") = false);
  return a;
}

// Python value <-> option value, one pair per option type of
// SKIPNATIVE_CAPTURE_OPTIONS (cupti/session.h). A value of the wrong type or
// range is a TypeError or ValueError naming the option, never converted: a
// string given for a bool is truthy whatever it says, a float is no count.
std::string given(py::handle v) {
  std::string r = py::repr(v);
  return r.size() > 40 ? r.substr(0, 40) + "..." : r;
}
[[noreturn]] void wrong_type(const char* name, const char* expected, py::handle v) {
  throw py::type_error(std::string(name) + ": expected " + expected + ", not " + given(v));
}
template <class T>
T strict(py::handle v, const char* name, const char* expected) {
  py::detail::make_caster<T> caster;
  if (!caster.load(v, /*convert=*/false)) wrong_type(name, expected, v);
  return py::detail::cast_op<T>(std::move(caster));
}
// A str as UTF-8, for a name or an option the user gives. A lone surrogate
// ("\ud800", or os.fsdecode's form of bytes that are not UTF-8) has no UTF-8
// form: it is read as the replacement characters the project's readers give
// it (safe_json, the Kineto reader: its 3-byte form decoded with replacement),
// so a name reads alike wherever it is stored and every writer takes it.
// Anything but a str is a TypeError naming `name`.
std::string utf8_text(py::handle v, const char* name, const char* expected) {
  if (!PyUnicode_Check(v.ptr())) wrong_type(name, expected, v);
  Py_ssize_t n = 0;
  if (const char* p = PyUnicode_AsUTF8AndSize(v.ptr(), &n)) return std::string(p, size_t(n));
  PyErr_Clear();  // UnicodeEncodeError: a lone surrogate
  auto raw = py::reinterpret_steal<py::object>(
      PyUnicode_AsEncodedString(v.ptr(), "utf-8", "surrogatepass"));
  if (!raw) throw py::error_already_set();
  return py::bytes(raw).attr("decode")("utf-8", "replace").cast<std::string>();
}
// An integer option: an int or a numpy integer, not a bool.
py::int_ option_int(py::handle v, const char* name) {
  if (PyBool_Check(v.ptr()) || !PyIndex_Check(v.ptr())) wrong_type(name, "an int", v);
  PyObject* i = PyNumber_Index(v.ptr());
  if (i == nullptr) throw py::error_already_set();  // its __index__ raised
  return py::reinterpret_steal<py::int_>(i);
}
void from_py(py::handle v, bool& out, const char* name) {
  out = strict<bool>(v, name, "True or False");
}
void from_py(py::handle v, std::string& out, const char* name) {
  out = utf8_text(v, name, "a str");
}
void from_py(py::handle v, std::optional<bool>& out, const char* name) {
  out = v.is_none() ? std::nullopt
                    : std::optional<bool>(strict<bool>(v, name, "True, False or None"));
}
void from_py(py::handle v, size_t& out, const char* name) {
  py::int_ i = option_int(v, name);
  if (PyObject_RichCompareBool(i.ptr(), py::int_(0).ptr(), Py_LT) == 1)
    throw py::value_error(std::string(name) + " must be >= 0, not " + given(v));
  out = PyLong_AsSize_t(i.ptr());
  if (PyErr_Occurred()) {
    PyErr_Clear();
    throw py::value_error(std::string(name) + " must be <= " + std::to_string(SIZE_MAX) + ", not " +
                          given(v));
  }
}
void from_py(py::handle v, int& out, const char* name) {
  py::int_ i = option_int(v, name);
  int overflow = 0;
  long long x = PyLong_AsLongLongAndOverflow(i.ptr(), &overflow);
  if (overflow != 0 || x < INT_MIN || x > INT_MAX)
    throw py::value_error(std::string(name) + ": " + given(v) + " is out of range");
  out = int(x);
}
void from_py(py::handle v, LaunchRecords& out, const char* name) {
  auto src = utf8_text(v, name, "'callbacks', 'activity' or 'hook'");
  if (src != "callbacks" && src != "activity" && src != "hook")
    throw py::value_error(std::string(name) +
                          ": expected 'callbacks', 'activity' or 'hook', not '" + src + "'");
  out = src == "activity" ? LaunchRecords::kActivity
        : src == "hook"   ? LaunchRecords::kHook
                          : LaunchRecords::kCallbacks;
}
void from_py(py::handle v, HookJoin& out, const char* name) {
  auto join = utf8_text(v, name, "'external' or 'order'");
  if (join != hook_join_name(HookJoin::kExternal) && join != hook_join_name(HookJoin::kOrder))
    throw py::value_error(std::string(name) + ": expected 'external' or 'order', not '" + join +
                          "'");
  out = join == hook_join_name(HookJoin::kOrder) ? HookJoin::kOrder : HookJoin::kExternal;
}
void from_py(py::handle v, ApiDomains& out, const char* name) {
  out.bits = 0;
  const char* expected = "a list of 'runtime' and/or 'driver'";
  // a sequence of names (a str is one, but not a list of them), each a str
  if (!py::isinstance<py::sequence>(v) || PyUnicode_Check(v.ptr()) || PyBytes_Check(v.ptr()))
    wrong_type(name, expected, v);
  for (auto item : py::reinterpret_borrow<py::sequence>(v)) {
    if (!PyUnicode_Check(item.ptr())) wrong_type(name, expected, v);
    const std::string dname = utf8_text(item, name, expected);
    if (dname == "runtime")
      out.bits |= 1;
    else if (dname == "driver")
      out.bits |= 2;
    else
      throw py::value_error(std::string(name) + ": expected 'runtime' and/or 'driver', not '" +
                            dname + "'");
  }
}

template <class T>
py::object to_py(const T& v) {
  return py::cast(v);
}
py::object to_py(const std::optional<bool>& v) { return v ? py::cast(*v) : py::none(); }
py::object to_py(LaunchRecords v) { return py::str(launch_records_name(v)); }
py::object to_py(HookJoin v) { return py::str(hook_join_name(v)); }
py::object to_py(ApiDomains v) {
  py::list out;
  if (v.has(0)) out.append("runtime");
  if (v.has(1)) out.append("driver");
  return out;
}

// Every option by name, with its value in `o` (Python's view of the options).
py::dict options_dict(const SessionOptions& o) {
  py::dict d;
#define SKIPNATIVE_OPTION_TO_PY(type, name, default_value) d[#name] = to_py(o.name);
  SKIPNATIVE_CAPTURE_OPTIONS(SKIPNATIVE_OPTION_TO_PY)
#undef SKIPNATIVE_OPTION_TO_PY
  return d;
}

SessionOptions options_from(const py::dict& d) {
  SessionOptions o;
  for (auto item : d) {
    std::string k = py::str(item.first);
    py::handle v = item.second;
    if (k == "wheel_dirs") {
      o.wheel_dirs = v.cast<std::vector<std::string>>();
      continue;
    }
#define SKIPNATIVE_OPTION_FROM_PY(type, name, default_value) \
  if (k == #name) {                                          \
    from_py(v, o.name, #name);                               \
    continue;                                                \
  }
    SKIPNATIVE_CAPTURE_OPTIONS(SKIPNATIVE_OPTION_FROM_PY)
#undef SKIPNATIVE_OPTION_FROM_PY
    throw py::value_error("unknown session option '" + k + "'");
  }
  const std::string problem = options_problem(o);
  if (!problem.empty()) throw py::value_error(problem);
  return o;
}

// The session's metadata, every key from the one JSON definition that `skip run`'s
// dumps carry too (cupti/metadata.h).
py::dict metadata(const Session& s) {
  return py::module_::import("json").attr("loads")(session_metadata_json(s));
}

}  // namespace

void register_session(py::module_& m) {
  py::register_exception<SessionError>(m, "CaptureError", PyExc_RuntimeError);

  // The capture options and their defaults (SKIPNATIVE_CAPTURE_OPTIONS).
  m.def("capture_options", [] { return options_dict(SessionOptions{}); });

  py::class_<Session>(m, "Session")
      .def(py::init([](const py::dict& opts) { return new Session(options_from(opts)); }),
           py::arg("options") = py::dict())
      .def("start", &Session::start, py::call_guard<py::gil_scoped_release>())
      .def("stop", &Session::stop, py::call_guard<py::gil_scoped_release>())
      .def(
          "mark",
          [](Session& s, py::handle name) { s.mark(utf8_text(name, "mark() name", "a str")); },
          py::arg("name"))
      .def_property_readonly("active", &Session::active)
      .def_property_readonly("finished", &Session::finished)
      .def("launches", [](py::object self) { return table_view(&Session::launches, self); })
      .def("kernels", [](py::object self) { return table_view(&Session::kernels, self); })
      .def("copies", [](py::object self) { return table_view(&Session::copies, self); })
      .def("markers", [](py::object self) { return table_view(&Session::markers, self); })
      .def("events", [](py::object self) { return table_view(&Session::events, self); })
      .def("strings", &Session::strings)
      .def("metadata", &metadata);

  m.def("record_dtypes", [] {
    register_record_dtypes();
    py::dict d;
    d["launches"] = py::dtype::of<LaunchRow>();
    d["kernels"] = py::dtype::of<KernelRow>();
    d["copies"] = py::dtype::of<CopyRow>();
    d["markers"] = py::dtype::of<MarkerRow>();
    d["events"] = py::dtype::of<EventRow>();
    return d;
  });
  m.def("record_sizes", [] {
    py::dict d;
    d["launches"] = sizeof(LaunchRow);
    d["kernels"] = sizeof(KernelRow);
    d["copies"] = sizeof(CopyRow);
    d["markers"] = sizeof(MarkerRow);
    d["events"] = sizeof(EventRow);
    return d;
  });

  m.def("api_table", [] {
    py::list out;
    for (const auto& a : subscribed_apis())
      out.append(py::make_tuple(a.domain, a.cbid, int(a.kind), a.name));
    return out;
  });

  m.def(
      "load_cupti",
      [](const std::vector<std::string>& wheel_dirs) {
        std::string why;
        const CuptiApi* api = load_cupti(wheel_dirs, &why);
        py::dict d;
        d["loaded"] = api != nullptr;
        d["why"] = why;
        if (api) {
          d["path"] = api->path;
          d["origin"] = api->origin;
          d["version"] = api->version;
          d["test_double"] = api->is_test_double;
        }
        return d;
      },
      py::arg("wheel_dirs"));

  m.def("device_names", &device_names, "names of the CUDA devices (empty without a driver)");
  // Which optional CUPTI entry points the loaded library has (empty: none loaded).
  m.def("cupti_features", [] {
    py::dict d;
    const CuptiApi* api = loaded_cupti();
    if (!api) return d;
    d["latency_timestamps"] = api->ActivityEnableLatencyTimestamps != nullptr;
    d["finalize"] = api->Finalize != nullptr;
    d["activity_attributes"] = api->ActivitySetAttribute != nullptr;
    d["api_records_by_cbid"] =
        api->ActivityEnableDriverApi != nullptr && api->ActivityEnableRuntimeApi != nullptr;
    d["hw_trace"] = api->ActivityEnableHWTrace != nullptr;
    d["hook_join_external"] = api->ActivityPushExternalCorrelationId != nullptr &&
                              api->ActivityPopExternalCorrelationId != nullptr;
    d["hook_join_order"] = api->GetStreamIdEx != nullptr && api->GetDeviceId != nullptr;
    return d;
  });
  m.def("probe_driver", [] {
    std::string why;
    int count = 0;
    bool ok = probe_driver(&why, &count);
    return py::make_tuple(ok, why, count);
  });

  // Subscribes and unsubscribes at once: tells whether CUPTI is free.
  m.def("probe_subscriber", [] {
    const CuptiApi* api = loaded_cupti();
    if (!api) return py::make_tuple(false, std::string("libcupti not loaded"));
    if (active_session())
      return py::make_tuple(false, std::string("a skipnative session is capturing"));
    CUpti_SubscriberHandle h = nullptr;
    CUptiResult r = api->Subscribe(
        &h, [](void*, CUpti_CallbackDomain, CUpti_CallbackId, const void*) {}, nullptr);
    if (r != CUPTI_SUCCESS)
      return py::make_tuple(false, forked_from_capture()
                                       ? std::string("forked while its parent's capture ran")
                                       : api->error_string(r));
    api->Unsubscribe(h);
    return py::make_tuple(true, std::string());
  });
}
