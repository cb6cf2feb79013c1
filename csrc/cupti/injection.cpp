// The injection library of `skip run` (libskipnative_inject.so). The CUDA
// driver loads the library named by CUDA_INJECTION64_PATH at cuInit and calls
// its InitializeInjection, so a session subscribes before any other CUPTI user
// and before the first launch, in every process of the run, with nothing in
// the program changed.
//
// `skip run` configures it through the environment:
//   SKIPNATIVE_RUN_DIR      the run's control folder (required; without it, nothing happens)
//   SKIPNATIVE_RUN_OPTIONS  session options, "key=value;key=value" (SessionOptions names)
//   SKIPNATIVE_RUN_WINDOW   "whole" (from cuInit to exit), "at OPEN CLOSE" (CLOCK_REALTIME
//                           ns; CLOSE 0: to exit) or "on-demand" (windows from the trigger file)
//
// Per process it writes, in the control folder: PID.json at cuInit (who it
// is), PID.state (what it is doing: the acknowledgement `skip trigger` waits
// for; "ending" while the last window closes on an "end") and one dump per
// capture window, PID.W.dump (cupti/run_dump.h), written when the window
// closes: at its end time, at `skip trigger --stop`, at exit (atexit; in a
// Python multiprocessing worker started by fork or forkserver, which ends
// through os._exit, when its threading shuts down), or on SIGTERM/SIGINT where
// the program left those signals at their default (the dump is written, then
// the signal's default action is taken).
// Between windows CUPTI's one subscriber slot stays held by a subscription that
// enables nothing, so no other user takes it.
#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include "cupti/metadata.h"
#include "cupti/run_dump.h"
#include "cupti/session.h"

namespace skipnative {
namespace {

enum class Mode { kWhole, kScheduled, kOnDemand };

int64_t unix_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(s);
  while (std::getline(in, item, sep))
    if (!item.empty()) out.push_back(item);
  return out;
}

// SessionOptions from "key=value;..." (the capture options by their Python names,
// set_option_text's text forms, plus wheel_dirs); an unknown key is an error (a newer
// `skip run` than this library).
bool parse_options(const std::string& text, SessionOptions* o, std::string* why) {
  for (const std::string& kv : split(text, ';')) {
    size_t eq = kv.find('=');
    std::string k = kv.substr(0, eq), v = eq == std::string::npos ? "" : kv.substr(eq + 1);
    if (k == "wheel_dirs") {
      o->wheel_dirs = split(v, ':');
    } else if (!set_option_text(*o, k, v, why)) {
      *why += " in SKIPNATIVE_RUN_OPTIONS";
      return false;
    }
  }
  *why = options_problem(*o);
  if (!why->empty()) *why += " in SKIPNATIVE_RUN_OPTIONS";
  return why->empty();
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// The length of the valid UTF-8 sequence at s[i] (0: none starts there), valid as
// Python's decoder takes it: no overlong form, no surrogate, nothing past U+10FFFF.
size_t utf8_length(const std::string& s, size_t i) {
  auto at = [&](size_t k) { return i + k < s.size() ? unsigned((unsigned char)s[i + k]) : 0u; };
  auto cont = [&](size_t k) { return (at(k) & 0xC0) == 0x80; };
  const unsigned c = at(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    const unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    return at(1) >= lo && at(1) <= hi && cont(2) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    const unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    return at(1) >= lo && at(1) <= hi && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

// The length of the invalid sequence at s[i], where utf8_length found none: its
// maximal part that could start a valid one (at least the byte itself), which
// Python's decoder also replaces by one U+FFFD.
size_t invalid_length(const std::string& s, size_t i) {
  auto at = [&](size_t k) { return i + k < s.size() ? unsigned((unsigned char)s[i + k]) : 0u; };
  auto cont = [&](size_t k) { return (at(k) & 0xC0) == 0x80; };
  const unsigned c = at(0);
  if (c >= 0xE0 && c <= 0xEF) {
    const unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    return at(1) >= lo && at(1) <= hi ? 2 : 1;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    const unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    if (!(at(1) >= lo && at(1) <= hi)) return 1;
    return cont(2) ? 3 : 2;
  }
  return 1;
}

// A command-line argument, path or environment value as a JSON string. They are
// bytes, not always UTF-8 (a file name in another encoding), and the JSON file
// must stay UTF-8 for its reader: each invalid sequence is written as U+FFFD, as
// bytes.decode("utf-8", "replace") reads it (and as the trace readers read the
// names they are given that are not UTF-8).
std::string json_quote_bytes(const std::string& s) {
  std::string valid;
  for (size_t i = 0; i < s.size();) {
    if (const size_t n = utf8_length(s, i)) {
      valid.append(s, i, n);
      i += n;
    } else {
      valid += "\xEF\xBF\xBD";  // U+FFFD
      i += invalid_length(s, i);
    }
  }
  return json_quote(valid);
}

std::string json_or_null(const std::string& v) { return v.empty() ? "null" : json_quote_bytes(v); }

// Written once, at cuInit: who this process is.
std::string identity_json(int64_t t_init, const std::string& mode) {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string argv = "[";
  size_t start = 0;
  for (size_t i = 0; i < cmdline.size(); ++i)
    if (cmdline[i] == '\0') {
      argv += (start ? "," : "") + json_quote_bytes(cmdline.substr(start, i - start));
      start = i + 1;
    }
  char exe[4096] = {0};
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  std::ostringstream o;
  o << "{\"pid\":" << getpid() << ",\"ppid\":" << getppid() << ",\"argv\":" << argv << "]"
    << ",\"exe\":" << json_quote_bytes(n > 0 ? std::string(exe, size_t(n)) : "")
    << ",\"rank\":" << json_or_null(env("RANK"))
    << ",\"local_rank\":" << json_or_null(env("LOCAL_RANK"))
    << ",\"world_size\":" << json_or_null(env("WORLD_SIZE"))
    << ",\"cuda_visible_devices\":" << json_or_null(env("CUDA_VISIBLE_DEVICES"))
    << ",\"t_init_unix_ns\":" << t_init << ",\"mode\":" << json_quote(mode) << "}";
  return o.str();
}

volatile sig_atomic_t g_signal = 0;
int g_wake[2] = {-1, -1};  // self-pipe: a signal or exit wakes the controller

pid_t g_pid = 0;  // the process the controller runs in

int retry_python_exit_hook();  // below, with the rest of the Python hook

void on_signal(int sig) {
  if (getpid() != g_pid) {  // a forked child: no controller here, take the default action
    signal(sig, SIG_DFL);
    raise(sig);
    return;
  }
  g_signal = sig;
  if (g_wake[1] >= 0) {
    char c = 's';
    ssize_t r = write(g_wake[1], &c, 1);
    (void)r;
  }
}

class Injection {
 public:
  bool init(std::string* why);
  void run_controller();
  void finish();

 private:
  void open_window(uint32_t seq, int64_t close_at);
  void close_window();
  void hold_slot();
  void release_slot();
  void poll_triggers();
  void end(const char* why);  // caller holds mu_
  void state(const char* what, const std::string& error = "");
  std::string path(const std::string& suffix) const {
    return dir_ + "/" + std::to_string(pid_) + suffix;
  }

  std::mutex mu_;
  std::string dir_;
  SessionOptions opts_;
  Mode mode_ = Mode::kWhole;
  int64_t open_at_ = 0, close_at_ = 0;  // scheduled window; close_at_ 0: none
  pid_t pid_ = 0;
  std::unique_ptr<Session> session_;
  uint32_t windows_ = 0, seq_ = 0, last_seq_ = 0;
  // The on-demand window the trigger file has open, by the request that opened
  // it (0: none), and when it closes (0: at a stop). Followed from the requests'
  // own times, not this process's, so that every process, one started late
  // included, numbers a window alike: its dump's window number.
  uint32_t trigger_window_ = 0;
  int64_t trigger_close_at_ = 0;
  uint32_t window_number_ = 0;  // the open window's
  bool finished_ = false, scheduled_done_ = false;
  std::string error_;
  std::vector<std::string> devices_;
  bool have_devices_ = false;
  const CuptiApi* api_ = nullptr;
  CUpti_SubscriberHandle slot_ = nullptr;
  std::streamoff trigger_offset_ = 0;
};

Injection* g_injection = nullptr;  // never destroyed: the controller may outlive statics

void Injection::state(const char* what, const std::string& error) {
  if (!error.empty()) error_ = error;
  std::ostringstream o;
  o << "{\"state\":" << json_quote(what) << ",\"seq\":" << seq_ << ",\"last_seq\":" << last_seq_
    << ",\"windows\":" << windows_ << ",\"error\":" << json_or_null(error_) << "}";
  std::string ignored;
  write_file_atomic(path(".state"), o.str(), &ignored);
}

void Injection::hold_slot() {
  if (slot_ != nullptr || api_ == nullptr || mode_ == Mode::kWhole) return;
  CUptiResult r = api_->Subscribe(
      &slot_, [](void*, CUpti_CallbackDomain, CUpti_CallbackId, const void*) {}, nullptr);
  if (r != CUPTI_SUCCESS) {
    slot_ = nullptr;
    error_ = "CUPTI already has a subscriber in this process (" + api_->error_string(r) +
             "); another profiler (torch.profiler, Nsight) holds it";
  }
}

void Injection::release_slot() {
  if (slot_ == nullptr) return;
  api_->Unsubscribe(slot_);
  slot_ = nullptr;
}

void Injection::open_window(uint32_t seq, int64_t close_at) {
  if (session_ && session_->active()) {  // a request while open extends the window
    seq_ = seq;
    close_at_ = close_at;
    state("open");
    return;
  }
  release_slot();
  seq_ = seq;
  close_at_ = close_at;
  session_ = std::make_unique<Session>(opts_);
  try {
    session_->start();
  } catch (const std::exception& e) {
    session_.reset();
    hold_slot();
    state("error", e.what());
    return;
  }
  ++windows_;
  window_number_ = mode_ == Mode::kOnDemand ? trigger_window_ : windows_;
  state("open");
}

void Injection::close_window() {
  if (!session_ || !session_->active()) return;
  std::string why;
  try {
    session_->stop();
  } catch (const std::exception& e) {
    why = e.what();
  }
  if (!have_devices_ && !(api_ && api_->is_test_double)) devices_ = device_names();
  have_devices_ = true;
  if (why.empty())
    write_dump(*session_, path("." + std::to_string(windows_) + ".dump"), uint32_t(pid_),
               window_number_, devices_, &why);
  session_.reset();
  last_seq_ = seq_;
  hold_slot();
  state("closed", why);
}

// The trigger file: one line per request, "open SEQ T_OPEN_NS DURATION_NS"
// (DURATION 0: until a stop), "stop SEQ" (on demand only) or "end SEQ" (any
// mode: `skip run` ends every capture before it passes a signal on, so the
// dumps are written whatever the program does with the signal). A process that
// starts late reads every line, so it joins a window still open, but not one
// whose stop it already sees (an empty window, which no other process has).
void Injection::poll_triggers() {
  struct Request {
    std::string op;
    uint32_t seq = 0;
    int64_t t_open = 0, duration = 0;
  };
  std::vector<Request> requests;
  {
    std::ifstream in(dir_ + "/trigger");
    if (!in) return;
    in.seekg(trigger_offset_);
    std::string line;
    while (std::getline(in, line)) {
      if (in.eof()) break;  // a line still being written
      trigger_offset_ = in.tellg();
      std::istringstream f(line);
      Request r;
      f >> r.op >> r.seq >> r.t_open >> r.duration;
      requests.push_back(r);
    }
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    const Request& r = requests[i];
    if (r.op == "end") {
      end("ended");
      return;
    }
    if (mode_ != Mode::kOnDemand) continue;
    if (r.op == "open") {
      const int64_t close_at = r.duration > 0 ? r.t_open + r.duration : 0;
      // a request while the file's window is open extends it, as open_window does
      if (trigger_window_ == 0 || (trigger_close_at_ != 0 && r.t_open >= trigger_close_at_)) {
        trigger_window_ = r.seq;
        // the window still open here ended before this request (its end not yet
        // seen): closed first, as every process that saw it in time has it
        close_window();
      }
      trigger_close_at_ = close_at;
      bool stopped = false;
      for (size_t j = i + 1; j < requests.size(); ++j)
        stopped = stopped || requests[j].op == "stop" || requests[j].op == "end";
      if (!stopped && (close_at == 0 || unix_ns() < close_at))
        open_window(r.seq, close_at);
      else {
        last_seq_ = r.seq;  // over before this process looked
        state(session_ ? "open" : "closed");
      }
    } else if (r.op == "stop") {
      trigger_window_ = 0;
      close_window();
    }
  }
}

bool Injection::init(std::string* why) {
  pid_ = getpid();
  dir_ = env("SKIPNATIVE_RUN_DIR");
  bool ok = parse_options(env("SKIPNATIVE_RUN_OPTIONS"), &opts_, why);
  const std::string window = env("SKIPNATIVE_RUN_WINDOW");
  if (ok && window == "on-demand") {
    mode_ = Mode::kOnDemand;
  } else if (ok && window.rfind("at ", 0) == 0) {
    mode_ = Mode::kScheduled;
    std::istringstream f(window.substr(3));
    f >> open_at_ >> close_at_;
  } else if (ok && !window.empty() && window != "whole") {
    *why = "malformed SKIPNATIVE_RUN_WINDOW: " + window;
    ok = false;
  }
  const char* names[] = {"whole", "scheduled", "on-demand"};
  std::string ignored;
  write_file_atomic(path(".json"), identity_json(unix_ns(), names[int(mode_)]), &ignored);
  if (!ok) {  // listed in run.json with the reason, not missing from it
    state("error", *why);
    return false;
  }
  std::string load_why;
  api_ = load_cupti(opts_.wheel_dirs, &load_why);
  if (api_ == nullptr) {
    state("error", load_why);
    return true;
  }
  if (mode_ == Mode::kWhole || (mode_ == Mode::kScheduled && unix_ns() >= open_at_)) {
    open_window(0, mode_ == Mode::kWhole ? 0 : close_at_);
    scheduled_done_ = true;
  } else {
    hold_slot();
    state(error_.empty() ? "waiting" : "error");
    // a window already open: joined now, before this process's first launch
    if (mode_ == Mode::kOnDemand && error_.empty()) poll_triggers();
  }
  return true;
}

void Injection::run_controller() {
  for (;;) {
    pollfd p{g_wake[0], POLLIN, 0};
    if (poll(&p, 1, retry_python_exit_hook()) > 0) {
      char buf[16];
      ssize_t r = read(g_wake[0], buf, sizeof buf);
      (void)r;
    }
    const int sig = g_signal;
    if (sig != 0) {
      finish();
      signal(sig, SIG_DFL);
      kill(getpid(), sig);
      return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) continue;  // still here for the signals
    const int64_t now = unix_ns();
    if (mode_ == Mode::kScheduled && !scheduled_done_ && now >= open_at_) {
      scheduled_done_ = true;
      if (close_at_ == 0 || now < close_at_) open_window(0, close_at_);
    }
    poll_triggers();
    if (close_at_ != 0 && now >= close_at_) close_window();
  }
}

void Injection::end(const char* why) {
  if (finished_ || getpid() != pid_) return;  // a forked child owns none of this
  finished_ = true;
  // "ending" while the window closes and its dump is written (a big capture, a
  // loaded machine: seconds): `skip run` waits for it before it passes a signal on
  if (session_ && session_->active()) state("ending");
  close_window();
  release_slot();
  state(why);
}

void Injection::finish() {
  std::lock_guard<std::mutex> lock(mu_);
  end("exited");
}

void at_exit() {
  // Not in a forked child: it owns none of this, and its copy of the lock may be
  // held by a thread that exists only in the parent (the controller, closing a
  // window): waiting for it would hang the child's exit for good.
  if (g_injection != nullptr && getpid() == g_pid) g_injection->finish();
}

// Python's C API, looked up in the process rather than linked: a process that
// is not Python has none, and is left alone. Only functions of the stable ABI.
struct PythonApi {
  int (*initialized)() = nullptr;
  int (*finalizing)() = nullptr;  // Py_IsFinalizing (3.13), _Py_IsFinalizing before
  int (*add_pending_call)(int (*)(void*), void*) = nullptr;
  void* (*unicode)(const char*) = nullptr;               // PyUnicode_FromString: new
  void* (*get_module)(void*) = nullptr;                  // PyImport_GetModule: new, or NULL
  void* (*new_function)(void*, void*, void*) = nullptr;  // PyCFunction_NewEx: new
  void* (*get_attr)(void*, const char*) = nullptr;       // PyObject_GetAttrString: new
  void* (*call)(void*, void*, void*) = nullptr;          // PyObject_Call: new
  int (*set_attr)(void*, const char*, void*) = nullptr;  // PyObject_SetAttrString
  void (*decref)(void*) = nullptr;
  void (*error_clear)() = nullptr;
  int (*parse)(void*, void*, const char*, char**, ...) = nullptr;  // PyArg_ParseTupleAndKeywords
  bool found() const {
    return initialized && finalizing && add_pending_call && unicode && get_module && new_function &&
           get_attr && call && set_attr && decref && error_clear && parse;
  }
};

const PythonApi& python_api() {
  static const PythonApi api = [] {
    auto sym = [](const char* name) { return dlsym(RTLD_DEFAULT, name); };
    PythonApi p;
    p.initialized = reinterpret_cast<int (*)()>(sym("Py_IsInitialized"));
    void* finalizing = sym("Py_IsFinalizing");
    p.finalizing = reinterpret_cast<int (*)()>(finalizing ? finalizing : sym("_Py_IsFinalizing"));
    p.add_pending_call = reinterpret_cast<int (*)(int (*)(void*), void*)>(sym("Py_AddPendingCall"));
    p.unicode = reinterpret_cast<void* (*)(const char*)>(sym("PyUnicode_FromString"));
    p.get_module = reinterpret_cast<void* (*)(void*)>(sym("PyImport_GetModule"));
    p.new_function = reinterpret_cast<void* (*)(void*, void*, void*)>(sym("PyCFunction_NewEx"));
    p.get_attr = reinterpret_cast<void* (*)(void*, const char*)>(sym("PyObject_GetAttrString"));
    p.call = reinterpret_cast<void* (*)(void*, void*, void*)>(sym("PyObject_Call"));
    p.set_attr =
        reinterpret_cast<int (*)(void*, const char*, void*)>(sym("PyObject_SetAttrString"));
    p.decref = reinterpret_cast<void (*)(void*)>(sym("Py_DecRef"));
    p.error_clear = reinterpret_cast<void (*)()>(sym("PyErr_Clear"));
    p.parse = reinterpret_cast<int (*)(void*, void*, const char*, char**, ...)>(
        sym("PyArg_ParseTupleAndKeywords"));
    return p;
  }();
  return api;
}

// os._exit as skip run installs it in a Python process: it ends the capture,
// then the process, both in C. A Python process may end through os._exit,
// past every C exit handler: a multiprocessing worker started by fork or
// forkserver always does (once Process._bootstrap returns: its threads joined
// and, from CPython 3.13, its atexit handlers run), and so may any program, a
// SIGTERM handler of its own among them. The GIL stays held while the dump is
// written: no other Python thread runs on, nor a signal handler, and the
// status given is the process's (nothing here waits for the GIL: the
// controller and at_exit never take it). The argument is checked first, as
// os._exit checks it; in a process forked from this one the capture is not
// its own and at_exit ends nothing. The os._exit it replaced is called then
// (posix._exit, which ends the process; or a program's own wrapper, such as a
// coverage tool's that saves its data first, which goes on to the original).
void* g_replaced_exit = nullptr;   // os._exit before: a reference kept for good
void* g_installed_exit = nullptr;  // this one, kept alive: never mistaken for another

void* os_exit(void*, void* args, void* kwargs) {
  const PythonApi& py = python_api();
  int status = 0;
  static const char* keywords[] = {"status", nullptr};
  if (!py.parse(args, kwargs, "i:_exit", const_cast<char**>(keywords), &status))
    return nullptr;  // TypeError, OverflowError: raised, as os._exit raises them
  at_exit();
  if (g_replaced_exit != nullptr) return py.call(g_replaced_exit, args, kwargs);
  _exit(status);
}

// PyMethodDef, as the stable ABI lays it out
struct MethodDef {
  const char* name;
  void* function;
  int flags;
  const char* doc;
};
constexpr int kMethVarargs = 0x1, kMethKeywords = 0x2;
MethodDef g_os_exit_def = {"_exit", reinterpret_cast<void*>(&os_exit), kMethVarargs | kMethKeywords,
                           "_exit(status)\n--\n\n"
                           "Exit to the system with specified status, without normal exit "
                           "processing (skip run ends its capture first)."};

// The wrapper's state: queued as a pending call, to be queued again by the
// controller (the pending-call queue was full, os not imported yet, or no
// memory), or done.
enum HookState : int { kHookNone, kHookQueued, kHookRetry, kHookDone };
std::atomic<int> g_hook_state{kHookNone};
std::atomic<int> g_hook_retries{0};
constexpr int kHookMaxRetries = 2000;  // the controller's ticks while retrying (1 ms): 2 s

// A pending call: the main thread runs it between two bytecodes, the GIL held,
// before the interpreter finalises; no thread of this library ever waits for
// the GIL. It runs no Python code (nothing is compiled, no handler of the
// program's runs inside it), so the frame it interrupts, the recursion limit,
// and the program's signal handlers cannot make it fail; what fails (no
// memory) is its own error, cleared, and it is tried again later.
int install_os_exit(void*) {
  if (getpid() != g_pid) return 0;  // a forked child: its capture is not this one
  const PythonApi& py = python_api();
  bool done = false;
  if (void* name = py.unicode("os")) {
    void* os = py.get_module(name);  // os as imported: not importing it here
    py.decref(name);
    if (os != nullptr) {
      void* before = py.get_attr(os, "_exit");
      if (before == nullptr) py.error_clear();  // none: the new one ends the process itself
      if (before != nullptr && before == g_installed_exit) {
        done = true;  // already this one (a second call)
      } else if (void* fn = py.new_function(&g_os_exit_def, nullptr, nullptr)) {
        done = py.set_attr(os, "_exit", fn) == 0;
        if (done) {
          g_installed_exit = fn;  // its reference kept, as the one to `before`
          g_replaced_exit = before;
          before = nullptr;
        } else {
          py.decref(fn);
        }
      }
      if (before != nullptr) py.decref(before);
      py.decref(os);
    }
  }
  if (!done) py.error_clear();
  g_hook_state = done ? kHookDone : kHookRetry;
  return 0;
}

// Queues the wrapper; from cuInit, which may hold the GIL or run on a thread
// that has none, or from the controller (Py_AddPendingCall needs neither). A
// call queued from a thread other than the main one runs when the main thread
// next looks for one: at once from CPython 3.12; up to 3.11, when it next
// takes the GIL back from another thread.
void queue_python_exit_hook() {
  const PythonApi& py = python_api();
  if (!py.found()) return;  // not Python
  if (!py.initialized() || py.finalizing()) {
    g_hook_state = kHookNone;  // too late: exit handlers run, not os._exit
    return;
  }
  g_hook_state = kHookQueued;  // before: the call may run (and set its state) at once
  if (py.add_pending_call(install_os_exit, nullptr) != 0) {
    int queued = kHookQueued;
    g_hook_state.compare_exchange_strong(queued, kHookRetry);
  }
}

// The controller's tick: how long it may wait, and a retry where one is due.
int retry_python_exit_hook() {
  if (g_hook_state != kHookRetry) return 20;
  if (g_hook_retries++ >= kHookMaxRetries) {
    g_hook_state = kHookNone;
    return 20;
  }
  queue_python_exit_hook();
  return 1;
}

void install_signal(int sig) {
  struct sigaction old{};
  if (sigaction(sig, nullptr, &old) != 0 || old.sa_handler != SIG_DFL) return;
  struct sigaction sa{};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(sig, &sa, nullptr);
}

}  // namespace
}  // namespace skipnative

// Called by the CUDA driver inside cuInit, once per process.
extern "C" __attribute__((visibility("default"))) int InitializeInjection(void) {
  using namespace skipnative;
  if (g_injection != nullptr || std::getenv("SKIPNATIVE_RUN_DIR") == nullptr) return 1;
  auto* inj = new Injection();
  std::string why;
  if (!inj->init(&why)) {
    std::fprintf(stderr, "skipnative: skip run cannot capture this process: %s\n", why.c_str());
    delete inj;
    return 1;
  }
  g_injection = inj;
  g_pid = getpid();
  if (pipe2(g_wake, O_CLOEXEC | O_NONBLOCK) != 0) g_wake[0] = g_wake[1] = -1;
  std::atexit(at_exit);
  install_signal(SIGTERM);
  install_signal(SIGINT);
  std::thread([inj] { inj->run_controller(); }).detach();
  queue_python_exit_hook();
  return 1;
}
