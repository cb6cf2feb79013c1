// The order join (core/order_join.h) on numpy columns: what a hook capture with
// hook_join = "order" runs at stop, exposed so that it can be replayed on any
// capture whose true correlation ids are known (tests, bench/gpu_overhead.py).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "core/order_join.h"

namespace py = pybind11;
using namespace skipnative;

namespace {

template <class T>
using Column = py::array_t<T, py::array::c_style | py::array::forcecast>;

void same_length(size_t n, const py::array& a, const char* what) {
  if (size_t(a.size()) != n)
    throw py::value_error(std::string("join_by_stream_order: ") + what + " has " +
                          std::to_string(a.size()) + " rows, expected " + std::to_string(n));
}

}  // namespace

void register_join(py::module_& m) {
  m.def(
      "join_by_stream_order",
      [](Column<int64_t> t_begin, Column<int64_t> t_end, Column<uint8_t> kind,
         Column<int64_t> device, Column<int64_t> stream, Column<int64_t> t_start,
         Column<int64_t> t_queued, Column<int64_t> correlation, Column<int64_t> gpu_device,
         Column<int64_t> gpu_stream, Column<uint8_t> gpu_kind, Column<int64_t> graph_id,
         bool kernels, bool copies, bool sets) {
        const size_t nl = size_t(t_begin.size()), ng = size_t(t_start.size());
        same_length(nl, t_end, "t_end");
        same_length(nl, kind, "kind");
        same_length(nl, device, "device");
        same_length(nl, stream, "stream");
        same_length(ng, t_queued, "t_queued");
        same_length(ng, correlation, "correlation");
        same_length(ng, gpu_device, "gpu_device");
        same_length(ng, gpu_stream, "gpu_stream");
        same_length(ng, gpu_kind, "gpu_kind");
        same_length(ng, graph_id, "graph_id");
        std::vector<OrderLaunch> calls(nl);
        for (size_t i = 0; i < nl; ++i) {
          OrderLaunch& l = calls[i];
          l.t_begin = uint64_t(t_begin.at(i));
          l.t_end = uint64_t(t_end.at(i));
          l.kind = kind.at(i);
          l.on_stream = device.at(i) >= 0 && stream.at(i) >= 0;
          l.device = uint32_t(device.at(i));
          l.stream = uint32_t(stream.at(i));
        }
        std::vector<OrderOp> ops(ng);
        for (size_t i = 0; i < ng; ++i) {
          OrderOp& o = ops[i];
          o.t_start = uint64_t(t_start.at(i));
          o.t_queued = uint64_t(t_queued.at(i));
          o.correlation_id = uint32_t(correlation.at(i));
          o.device = uint32_t(gpu_device.at(i));
          o.stream = uint32_t(gpu_stream.at(i));
          if (gpu_kind.at(i) > 2) throw py::value_error("join_by_stream_order: gpu_kind above 2");
          o.kind = OpKind(gpu_kind.at(i));  // the trace's GPU_KINDS: kernel, memcpy, memset
          o.graph = graph_id.at(i) != 0;
        }
        OrderJoinStats st;
        std::vector<uint32_t> corr;
        {
          py::gil_scoped_release release;
          corr = join_by_stream_order(calls, ops, OrderRecorded{kernels, copies, sets}, &st);
        }
        py::array_t<uint32_t> out(py::ssize_t(corr.size()));
        std::copy(corr.begin(), corr.end(), out.mutable_data());
        py::dict d;
        d["launches_joined"] = st.launches_joined;
        d["launches_unjoined"] = st.launches_unjoined;
        d["work_unjoined"] = st.work_unjoined;
        d["pairs_checked"] = st.pairs_checked;
        d["pairs_ambiguous"] = st.pairs_ambiguous;
        d["pairs_unverified"] = st.pairs_unverified;
        return py::make_tuple(out, d);
      },
      py::arg("t_begin"), py::arg("t_end"), py::arg("kind"), py::arg("device"), py::arg("stream"),
      py::arg("t_start"), py::arg("t_queued"), py::arg("correlation"), py::arg("gpu_device"),
      py::arg("gpu_stream"), py::arg("gpu_kind"), py::arg("graph_id"), py::arg("kernels") = true,
      py::arg("copies") = true, py::arg("sets") = true,
      "Correlation id of each launch's GPU work (0: none) by per-stream order, and counts. "
      "device/stream -1: the launch's stream is unknown.");
}
