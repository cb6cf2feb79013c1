// The raw dump a process writes for `skip run`: one capture window of one
// process, the session's result tables as they are in memory. `skip run`
// converts the dumps of each process into its .skip file once the command has
// exited (skipnative/io/rundump.py reads this layout).
//
// Layout, little-endian (the byte order of every target skipnative builds on):
//
//   offset  size  field
//   0       8     magic "SKIPDUMP"
//   8       4     u32 DUMP_VERSION
//   12      4     u32 H, length of the header
//   16      H     header: UTF-8 JSON object
//                 {"pid", "window", "meta": {session metadata, as Session.metadata()},
//                  "devices": [names], "tables": {"launches"|"kernels"|"copies"|"markers"|
//                  "events": {"rows", "row_bytes"}}, "strings": count}
//                 ("window": the window's number; on demand, the trigger request's
//                 that opened it, alike in every process)
//   16+H    ...   the rows of launches (LaunchRow), kernels (KernelRow), copies
//                 (CopyRow), markers (MarkerRow) and events (EventRow) of
//                 core/records.h, in that order
//   ...     ...   strings: for each, u32 byte length then its UTF-8 bytes
//   end-8   8     trailer "SKIPDEND": a dump without it is incomplete
//
// The file is written under a temporary name and renamed into place, so a
// dump that exists is whole.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cupti/metadata.h"
#include "cupti/session.h"

namespace skipnative {

constexpr char kDumpMagic[8] = {'S', 'K', 'I', 'P', 'D', 'U', 'M', 'P'};
constexpr char kDumpTrailer[8] = {'S', 'K', 'I', 'P', 'D', 'E', 'N', 'D'};
constexpr uint32_t kDumpVersion = 2;  // 2: the events table

// Writes the stopped session `s` as window `window` of process `pid` to `path`.
// Returns false with `*why` on failure.
bool write_dump(const Session& s, const std::string& path, uint32_t pid, uint32_t window,
                const std::vector<std::string>& devices, std::string* why);

// Writes `text` to `path` through a temporary file and a rename.
bool write_file_atomic(const std::string& path, const std::string& text, std::string* why);

}  // namespace skipnative
