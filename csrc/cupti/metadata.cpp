#include "cupti/metadata.h"

#include <cstdio>
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

// Text -> option value, one overload per option type of SKIPNATIVE_CAPTURE_OPTIONS.
bool from_text(const std::string& v, std::string& out) {
  out = v;
  return true;
}
bool from_text(const std::string& v, bool& out) {
  if (v != "1" && v != "0" && v != "true" && v != "false") return false;
  out = v == "1" || v == "true";
  return true;
}
bool from_text(const std::string& v, size_t& out) {
  if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos || v.size() > 19)
    return false;
  out = size_t(std::stoull(v));
  return true;
}
bool from_text(const std::string& v, std::optional<bool>& out) {
  if (v.empty() || v == "none") {
    out = std::nullopt;
    return true;
  }
  bool b = false;
  if (!from_text(v, b)) return false;
  out = b;
  return true;
}
bool from_text(const std::string& v, LaunchRecords& out) {
  for (auto r : {LaunchRecords::kCallbacks, LaunchRecords::kActivity, LaunchRecords::kHook})
    if (v == launch_records_name(r)) {
      out = r;
      return true;
    }
  return false;
}
bool from_text(const std::string& v, HookJoin& out) {
  for (auto j : {HookJoin::kExternal, HookJoin::kOrder})
    if (v == hook_join_name(j)) {
      out = j;
      return true;
    }
  return false;
}
bool from_text(const std::string& v, int& out) {
  const size_t digits = v.size() > 0 && v[0] == '-' ? 1 : 0;
  if (v.size() == digits || v.find_first_not_of("0123456789", digits) != std::string::npos ||
      v.size() > 9)
    return false;
  out = std::stoi(v);
  return true;
}
bool from_text(const std::string& v, ApiDomains& out) {
  out.bits = 0;
  std::istringstream in(v);
  std::string d;
  while (std::getline(in, d, ',')) {
    if (d == "runtime")
      out.bits |= 1;
    else if (d == "driver")
      out.bits |= 2;
    else if (!d.empty())
      return false;
  }
  return true;
}

// Option value -> JSON, likewise.
std::string to_json(const std::string& v) { return json_quote(v); }
std::string to_json(bool v) { return v ? "true" : "false"; }
std::string to_json(size_t v) { return std::to_string(v); }
std::string to_json(const std::optional<bool>& v) { return v ? to_json(*v) : "null"; }
std::string to_json(LaunchRecords v) { return json_quote(launch_records_name(v)); }
std::string to_json(HookJoin v) { return json_quote(hook_join_name(v)); }
std::string to_json(int v) { return std::to_string(v); }
std::string to_json(ApiDomains v) {
  std::string out = "[";
  if (v.has(0)) out += "\"runtime\"";
  if (v.has(1)) out += std::string(v.has(0) ? "," : "") + "\"driver\"";
  return out + "]";
}
std::string to_json(double v) {
  std::ostringstream o;
  o.precision(17);
  o << v;
  return o.str();
}
std::string to_json(const OverheadTotals& v) {
  std::string out = "{";
  for (const auto& [kind, t] : v)
    out += (out.size() > 1 ? "," : "") + json_quote(overhead_kind_name(kind)) +
           ":{\"count\":" + std::to_string(t.count) + ",\"ns\":" + std::to_string(t.ns) + "}";
  return out + "}";
}
std::string to_json(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + json_quote(v[i]);
  return out + "]";
}

}  // namespace

std::string options_problem(const SessionOptions& o) {
  if (o.activity_buffer_bytes < 4096) return "activity_buffer_bytes must be >= 4096";
  if (o.activity_buffer_bytes > kMaxActivityBufferBytes)
    return "activity_buffer_bytes must be <= " + std::to_string(kMaxActivityBufferBytes) +
           ", not " + std::to_string(o.activity_buffer_bytes);
  if (o.max_activity_buffers < 1) return "max_activity_buffers must be >= 1";
  if (o.launch_chunk_records < 1) return "launch_chunk_records must be >= 1";
  if (o.completion_cpu < -1)
    return "completion_cpu must be a CPU number, or -1 for none, not " +
           std::to_string(o.completion_cpu);
  if (o.stream_waits && o.launch_records == LaunchRecords::kHook)
    return "stream_waits needs launch_records 'callbacks' or 'activity': a hooked event call "
           "has no CUPTI correlation id to join its wait records by";
  return "";
}

bool set_option_text(SessionOptions& o, const std::string& key, const std::string& value,
                     std::string* why) {
#define SKIPNATIVE_OPTION_FROM_TEXT(type, name, default_value)         \
  if (key == #name) {                                                  \
    if (from_text(value, o.name)) return true;                         \
    *why = "option " + key + ": '" + value + "' is not a valid value"; \
    return false;                                                      \
  }
  SKIPNATIVE_CAPTURE_OPTIONS(SKIPNATIVE_OPTION_FROM_TEXT)
#undef SKIPNATIVE_OPTION_FROM_TEXT
  *why = "unknown capture option '" + key + "'";
  return false;
}

namespace {

std::string metadata_json(const Session& s) {
  std::ostringstream o;
  o << "{";
  const SessionOptions& op = s.options();
#define SKIPNATIVE_OPTION_TO_JSON(type, name, default_value) \
  if (std::string(#name) != "clock") o << "\"" #name "\":" << to_json(op.name) << ",";
  SKIPNATIVE_CAPTURE_OPTIONS(SKIPNATIVE_OPTION_TO_JSON)
#undef SKIPNATIVE_OPTION_TO_JSON
  if (const CuptiApi* api = s.api())
    o << "\"cupti_version\":" << s.cupti_version() << ",\"cupti_path\":" << json_quote(api->path)
      << ",\"cupti_origin\":" << json_quote(api->origin)
      << ",\"cupti_test_double\":" << to_json(api->is_test_double) << ",";
  const ClockParams& c = s.clock();
  const SessionStats& st = s.stats();
  o << "\"record_layout\":" << int(s.layout())
    << ",\"clock\":" << json_quote(clock_kind_name(c.kind))
    << ",\"clock_ticks_per_second\":" << to_json(double(c.ticks_per_second))
    << ",\"clock_realtime_offset_ns\":" << c.realtime_offset_ns
    << ",\"clock_realtime_uncertainty_ns\":" << c.realtime_uncertainty_ns
    << ",\"t_start_ns\":" << s.t_start_ns() << ",\"t_stop_ns\":" << s.t_stop_ns()
    << ",\"dropped\":{\"launches\":" << st.launches_dropped << ",\"cupti\":" << st.cupti_dropped
    << ",\"gpu_rows\":" << st.gpu_rows_dropped << ",\"spilled\":" << st.records_spilled
    << ",\"incomplete\":" << st.gpu_rows_incomplete << ",\"unallocated\":" << st.records_unallocated
    << "}"
    << ",\"buffers_refused\":" << st.buffers_refused
    << ",\"buffers_unallocated\":" << st.buffers_unallocated
    << ",\"buffers_spilled\":" << st.buffers_spilled
    << ",\"buffers_completed\":" << st.buffers_completed
    << ",\"max_buffers_in_use\":" << st.max_buffers_in_use
    << ",\"buffers_prezeroed\":" << to_json(st.buffers_prezeroed)
    << ",\"records_ignored\":" << st.records_ignored
    << ",\"launches_outside\":" << st.launches_outside
    << ",\"gpu_rows_outside\":" << st.gpu_rows_outside
    << ",\"callbacks_unavailable\":" << to_json(st.callbacks_unavailable)
    << ",\"launch_source\":" << to_json(s.launch_source())
    << ",\"launch_hook_fallback\":" << json_quote(st.launch_hook_fallback)
    << ",\"hook_api_records\":" << json_quote(st.hook_api_records)
    << ",\"launches_unjoined\":" << st.launches_unjoined
    << ",\"launches_captured\":" << st.launches_captured
    << ",\"launches_failed\":" << st.launches_failed << ",\"work_unjoined\":" << st.work_unjoined
    << ",\"pairs_checked\":" << st.pairs_checked << ",\"pairs_ambiguous\":" << st.pairs_ambiguous
    << ",\"pairs_unverified\":" << st.pairs_unverified
    << ",\"cupti_overhead\":" << to_json(st.cupti_overhead)
    << ",\"completion_pinned\":" << to_json(st.completion_pinned)
    << ",\"cupti_finalized\":" << to_json(s.finalized()) << "}";
  return o.str();
}

}  // namespace

// What start() and stop() write is read whole: metadata may be read from
// another thread while they run (the bindings run them without the GIL).
std::string session_metadata_json(const Session& s) {
  return s.read_consistent([&] { return metadata_json(s); });
}

}  // namespace skipnative
