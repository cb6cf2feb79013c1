#include "cupti/run_dump.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>

namespace skipnative {

std::string json_quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += char(c);  // UTF-8 passes through; invalid bytes are the reader's to reject
        }
    }
  }
  return out + "\"";
}

namespace {

const char* b(bool v) { return v ? "true" : "false"; }

std::string string_list(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + json_quote(v[i]);
  return out + "]";
}

template <class T>
bool put(FILE* f, const std::vector<T>& rows) {
  return rows.empty() || std::fwrite(rows.data(), sizeof(T), rows.size(), f) == rows.size();
}

}  // namespace

std::string session_metadata_json(const Session& s) {
  std::ostringstream o;
  o << "{";
  if (const CuptiApi* api = s.api())
    o << "\"cupti_version\":" << s.cupti_version() << ",\"cupti_path\":" << json_quote(api->path)
      << ",\"cupti_origin\":" << json_quote(api->origin)
      << ",\"cupti_test_double\":" << b(api->is_test_double) << ",";
  const ClockParams& c = s.clock();
  const SessionStats& st = s.stats();
  const SessionOptions& op = s.options();
  o.precision(17);
  o << "\"record_layout\":" << int(s.layout())
    << ",\"clock\":" << json_quote(clock_kind_name(c.kind))
    << ",\"clock_ticks_per_second\":" << c.ticks_per_second
    << ",\"clock_realtime_offset_ns\":" << c.realtime_offset_ns
    << ",\"clock_realtime_uncertainty_ns\":" << c.realtime_uncertainty_ns
    << ",\"t_start_ns\":" << s.t_start_ns() << ",\"t_stop_ns\":" << s.t_stop_ns()
    << ",\"dropped\":{\"launches\":" << st.launches_dropped << ",\"cupti\":" << st.cupti_dropped
    << ",\"gpu_rows\":" << st.gpu_rows_dropped << "}"
    << ",\"buffers_refused\":" << st.buffers_refused
    << ",\"buffers_completed\":" << st.buffers_completed
    << ",\"max_buffers_in_use\":" << st.max_buffers_in_use
    << ",\"buffers_prezeroed\":" << b(st.buffers_prezeroed)
    << ",\"records_ignored\":" << st.records_ignored
    << ",\"launches_outside\":" << st.launches_outside
    << ",\"callbacks_unavailable\":" << string_list(st.callbacks_unavailable)
    << ",\"latency_timestamps\":" << b(op.latency_timestamps)
    << ",\"cupti_finalized\":" << b(s.finalized()) << ",\"hw_trace\":" << b(op.hw_trace)
    << ",\"device_buffer_bytes\":" << op.device_buffer_bytes
    << ",\"serial_kernels\":" << b(op.serial_kernels)
    << ",\"launch_records\":" << (op.launch_activity ? "\"activity\"" : "\"callbacks\"")
    << ",\"device_buffer_host_pinned\":" << b(op.device_buffer_host_pinned)
    << ",\"activity_buffer_bytes\":" << op.activity_buffer_bytes
    << ",\"max_activity_buffers\":" << op.max_activity_buffers
    << ",\"max_launch_bytes\":" << op.max_launch_bytes << "}";
  return o.str();
}

bool write_dump(const Session& s, const std::string& path, uint32_t pid, uint32_t window,
                const std::vector<std::string>& devices, std::string* why) {
  const std::vector<std::string> strings = s.strings();
  std::ostringstream h;
  h << "{\"pid\":" << pid << ",\"window\":" << window << ",\"meta\":" << session_metadata_json(s)
    << ",\"devices\":" << string_list(devices)
    << ",\"tables\":{\"launches\":{\"rows\":" << s.launches().size()
    << ",\"row_bytes\":" << sizeof(LaunchRow) << "},\"kernels\":{\"rows\":" << s.kernels().size()
    << ",\"row_bytes\":" << sizeof(KernelRow) << "},\"copies\":{\"rows\":" << s.copies().size()
    << ",\"row_bytes\":" << sizeof(CopyRow) << "},\"markers\":{\"rows\":" << s.markers().size()
    << ",\"row_bytes\":" << sizeof(MarkerRow) << "}},\"strings\":" << strings.size() << "}";
  const std::string header = h.str();

  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) {
    *why = tmp + ": " + std::strerror(errno);
    return false;
  }
  const uint32_t version = kDumpVersion, hlen = uint32_t(header.size());
  bool ok = std::fwrite(kDumpMagic, 1, 8, f) == 8 && std::fwrite(&version, 4, 1, f) == 1 &&
            std::fwrite(&hlen, 4, 1, f) == 1 &&
            std::fwrite(header.data(), 1, header.size(), f) == header.size() &&
            put(f, s.launches()) && put(f, s.kernels()) && put(f, s.copies()) &&
            put(f, s.markers());
  for (size_t i = 0; ok && i < strings.size(); ++i) {
    const uint32_t n = uint32_t(strings[i].size());
    ok = std::fwrite(&n, 4, 1, f) == 1 && std::fwrite(strings[i].data(), 1, n, f) == n;
  }
  ok = ok && std::fwrite(kDumpTrailer, 1, 8, f) == 8;
  ok = (std::fflush(f) == 0) && ok;
  ok = (fsync(fileno(f)) == 0) && ok;
  const int err = errno;
  std::fclose(f);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    *why = path + ": " + std::strerror(ok ? errno : err);
    std::remove(tmp.c_str());
    return false;
  }
  return true;
}

bool write_file_atomic(const std::string& path, const std::string& text, std::string* why) {
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) {
    *why = tmp + ": " + std::strerror(errno);
    return false;
  }
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    *why = path + ": " + std::strerror(errno);
    std::remove(tmp.c_str());
    return false;
  }
  return true;
}

}  // namespace skipnative
