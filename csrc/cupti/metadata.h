// A capture's options and metadata as text: one definition, from
// SKIPNATIVE_CAPTURE_OPTIONS (session.h) and the session's stats. The Python
// bindings' Session.metadata() and `skip run`'s dumps both read it, so the two
// can never disagree on a key.
#pragma once

#include <string>

#include "cupti/session.h"

namespace skipnative {

// JSON string literal of `s` (quotes and escapes added).
std::string json_quote(const std::string& s);

// Sets one capture option from its text form ("1"/"0"/"true"/"false" for flags,
// decimal for sizes, "callbacks"/"activity", "runtime,driver", "" for finalize's
// automatic choice). Unknown keys and malformed values return false with why.
bool set_option_text(SessionOptions& o, const std::string& key, const std::string& value,
                     std::string* why);

// What is wrong with a set of options as a whole ("" when nothing): the bounds
// every way of setting them shares (skipnative.capture(), `skip run`'s injection).
std::string options_problem(const SessionOptions& o);

// The session's metadata as one JSON object: every capture option (the clock as
// the clock used), the CUPTI library, the clock's parameters, the time span and
// every drop and buffer count.
std::string session_metadata_json(const Session& s);

}  // namespace skipnative
