#include "cupti/loader.h"

#include <dlfcn.h>

#include <cstdlib>
#include <memory>
#include <mutex>

#include "core/alloc_fault.h"
#include "cupti/fork_lock.h"

namespace skipnative {

std::string CuptiApi::error_string(CUptiResult r) const {
  const char* s = nullptr;
  if (GetResultString && GetResultString(r, &s) == CUPTI_SUCCESS && s) return s;
  return "CUPTI error " + std::to_string(int(r));
}

namespace {

std::mutex g_load_mu;
[[maybe_unused]] const int g_load_mu_fork = hold_across_fork<g_load_mu>();
std::unique_ptr<CuptiApi> g_api;

template <class F>
bool resolve(void* h, const char* name, F& out, std::string* missing) {
  out = reinterpret_cast<F>(dlsym(h, name));
  if (!out && missing) *missing += std::string(missing->empty() ? "" : ", ") + name;
  return out != nullptr;
}

// Resolves every function; on failure explains which symbols are missing.
std::unique_ptr<CuptiApi> bind(void* h, const std::string& path, const std::string& origin,
                               std::string* why) {
  auto api = std::make_unique<CuptiApi>();
  api->path = path;
  api->origin = origin;
  std::string missing;
  resolve(h, "cuptiGetVersion", api->GetVersion, &missing);
  resolve(h, "cuptiGetResultString", api->GetResultString, &missing);
  resolve(h, "cuptiSubscribe", api->Subscribe, &missing);
  resolve(h, "cuptiUnsubscribe", api->Unsubscribe, &missing);
  resolve(h, "cuptiEnableCallback", api->EnableCallback, &missing);
  resolve(h, "cuptiActivityEnable", api->ActivityEnable, &missing);
  resolve(h, "cuptiActivityDisable", api->ActivityDisable, &missing);
  resolve(h, "cuptiActivityRegisterCallbacks", api->ActivityRegisterCallbacks, &missing);
  resolve(h, "cuptiActivityRegisterTimestampCallback", api->ActivityRegisterTimestampCallback,
          &missing);
  resolve(h, "cuptiActivityFlushAll", api->ActivityFlushAll, &missing);
  resolve(h, "cuptiActivityGetNextRecord", api->ActivityGetNextRecord, &missing);
  resolve(h, "cuptiActivityGetNumDroppedRecords", api->ActivityGetNumDroppedRecords, &missing);
  resolve(h, "cuptiActivityEnableLatencyTimestamps", api->ActivityEnableLatencyTimestamps, nullptr);
  resolve(h, "cuptiFinalize", api->Finalize, nullptr);
  resolve(h, "cuptiActivitySetAttribute", api->ActivitySetAttribute, nullptr);
  resolve(h, "cuptiActivityEnableHWTrace", api->ActivityEnableHWTrace, nullptr);
  resolve(h, "cuptiActivityEnableDriverApi", api->ActivityEnableDriverApi, nullptr);
  resolve(h, "cuptiActivityEnableRuntimeApi", api->ActivityEnableRuntimeApi, nullptr);
  resolve(h, "cuptiActivityFlushPeriod", api->ActivityFlushPeriod, nullptr);
  resolve(h, "cuptiActivityPushExternalCorrelationId", api->ActivityPushExternalCorrelationId,
          nullptr);
  resolve(h, "cuptiActivityPopExternalCorrelationId", api->ActivityPopExternalCorrelationId,
          nullptr);
  resolve(h, "cuptiGetStreamIdEx", api->GetStreamIdEx, nullptr);
  resolve(h, "cuptiGetDeviceId", api->GetDeviceId, nullptr);
  if (!missing.empty()) {
    *why += path + ": missing " + missing + "; ";
    return nullptr;
  }
  api->double_clock = reinterpret_cast<ExternalClockFn>(dlsym(h, "skipnative_double_clock_ns"));
  api->is_test_double = api->double_clock != nullptr;
  if (api->is_test_double)
    g_allocation_fault.store(
        reinterpret_cast<AllocationFault>(dlsym(h, "skipnative_double_allocation_fails")));
  CUptiResult r = api->GetVersion(&api->version);
  if (r != CUPTI_SUCCESS) {
    *why += path + ": cuptiGetVersion failed (" + api->error_string(r) + "); ";
    return nullptr;
  }
  return api;
}

bool try_load(const std::string& path, const std::string& origin, int flags, std::string* why) {
  void* h = dlopen(path.c_str(), flags);
  if (!h) {
    if (!(flags & RTLD_NOLOAD)) {
      const char* e = dlerror();
      *why += path + ": " + (e ? e : "dlopen failed") + "; ";
    }
    return false;
  }
  auto api = bind(h, path, origin, why);
  if (!api) return false;  // the handle stays open: closing a half-used CUPTI is unsafe
  g_api = std::move(api);
  return true;
}

}  // namespace

const CuptiApi* loaded_cupti() {
  std::lock_guard<std::mutex> lock(g_load_mu);
  return g_api.get();
}

const CuptiApi* load_cupti(const std::vector<std::string>& wheel_dirs, std::string* why) {
  std::lock_guard<std::mutex> lock(g_load_mu);
  if (g_api) return g_api.get();
  std::string tried;
  const char* sonames[] = {"libcupti.so.13", "libcupti.so.12", "libcupti.so"};
  for (const char* so : sonames)
    if (try_load(so, "in-process", RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL, &tried))
      return g_api.get();
  tried += "no libcupti loaded in the process; ";
  // The user's explicit choice comes before any search, and a failure to load it is
  // the answer: falling through to another copy would hide the mistake.
  if (const char* env = std::getenv("SKIPNATIVE_CUPTI_LIBRARY"); env && *env) {
    if (try_load(env, "env", RTLD_NOW | RTLD_GLOBAL, &tried)) return g_api.get();
    if (tried.size() >= 2) tried.resize(tried.size() - 2);
    *why = "SKIPNATIVE_CUPTI_LIBRARY names no usable libcupti: " + tried;
    return nullptr;
  }
  tried += "SKIPNATIVE_CUPTI_LIBRARY not set; ";
  for (const auto& dir : wheel_dirs)
    for (const char* so : {"libcupti.so.13", "libcupti.so.12"}) {
      std::string p = dir + "/" + so;
      if (FILE* f = fopen(p.c_str(), "rb")) {
        fclose(f);
        if (try_load(p, "wheel", RTLD_NOW | RTLD_GLOBAL, &tried)) return g_api.get();
      }
    }
  if (wheel_dirs.empty()) tried += "no nvidia-cuda-cupti wheel on sys.path; ";
  for (const char* so : {"libcupti.so.13", "libcupti.so.12", "libcupti.so",
                         "/usr/local/cuda/extras/CUPTI/lib64/libcupti.so"})
    if (try_load(so, "system", RTLD_NOW | RTLD_GLOBAL, &tried)) return g_api.get();
  if (!tried.empty() && tried.size() >= 2) tried.resize(tried.size() - 2);
  *why = "no usable libcupti: " + tried;
  return nullptr;
}

bool probe_driver(std::string* why, int* device_count) {
  *device_count = 0;
  void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
  if (!h) {
    const char* e = dlerror();
    *why = std::string("no CUDA driver (") + (e ? e : "libcuda.so.1 not found") + ")";
    return false;
  }
  using InitFn = int (*)(unsigned);
  using CountFn = int (*)(int*);
  auto init = reinterpret_cast<InitFn>(dlsym(h, "cuInit"));
  auto count = reinterpret_cast<CountFn>(dlsym(h, "cuDeviceGetCount"));
  if (!init || !count) {
    *why = "libcuda.so.1 lacks cuInit/cuDeviceGetCount";
    return false;
  }
  int r = init(0);
  if (r != 0) {
    *why = "cuInit failed with CUDA error " + std::to_string(r) +
           (r == 100 ? " (no CUDA-capable device)" : "");
    return false;
  }
  r = count(device_count);
  if (r != 0 || *device_count == 0) {
    *why = "no CUDA device (cuDeviceGetCount: error " + std::to_string(r) + ", count " +
           std::to_string(*device_count) + ")";
    return false;
  }
  return true;
}

std::vector<std::string> device_names() {
  std::vector<std::string> out;
  std::string why;
  int count = 0;
  if (!probe_driver(&why, &count)) return out;
  void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  if (!h) return out;
  using GetFn = int (*)(int*, int);
  using NameFn = int (*)(char*, int, int);
  auto get = reinterpret_cast<GetFn>(dlsym(h, "cuDeviceGet"));
  auto name = reinterpret_cast<NameFn>(dlsym(h, "cuDeviceGetName"));
  for (int i = 0; get && name && i < count; ++i) {
    int dev = 0;
    char buf[256] = {0};
    if (get(&dev, i) == 0 && name(buf, sizeof buf - 1, dev) == 0) out.emplace_back(buf);
  }
  return out;
}

}  // namespace skipnative
