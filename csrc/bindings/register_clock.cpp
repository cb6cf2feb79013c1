#include <pybind11/pybind11.h>

#include "core/clock.h"

namespace py = pybind11;
using namespace skipnative;

void register_clock(py::module_& m) {
  m.def(
      "clock_info",
      [](const std::string& kind) {
        ClockParams p = make_clock(kind, nullptr);
        py::dict d;
        d["kind"] = clock_kind_name(p.kind);
        d["ticks_per_second"] = p.ticks_per_second;
        d["realtime_offset_ns"] = p.realtime_offset_ns;
        d["realtime_uncertainty_ns"] = p.realtime_uncertainty_ns;
        d["now_ns"] = ticks_to_ns(p, read_ticks(p));
        return d;
      },
      py::arg("kind") = "auto");
  m.def("tsc_is_invariant", &tsc_is_invariant);
}
