#include "cupti/run_dump.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>

namespace skipnative {

namespace {

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
    << ",\"row_bytes\":" << sizeof(MarkerRow) << "},\"events\":{\"rows\":" << s.events().size()
    << ",\"row_bytes\":" << sizeof(EventRow) << "}},\"strings\":" << strings.size() << "}";
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
            put(f, s.markers()) && put(f, s.events());
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
