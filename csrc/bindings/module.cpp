// skipnative._native: the private compiled module. The public API is Python
// (skipnative/); this module hands it raw record tables as numpy byte arrays
// whose dtypes live in skipnative/_records.py.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void register_session(py::module_& m);
void register_clock(py::module_& m);
void register_bench(py::module_& m);
void register_kineto(py::module_& m);
void register_launch_bench(py::module_& m);
void register_join(py::module_& m);

PYBIND11_MODULE(_native, m) {
  m.doc() = "skipnative native core: CUPTI session, clock, record buffers";
  register_session(m);
  register_clock(m);
  register_bench(m);
  register_kineto(m);
  register_launch_bench(m);
  register_join(m);
}
