// The launch hooks (libskipnative_hooks.so) with resolvers racing: threads
// resolve the same wrapped entry points at once, through dlsym and through
// cuGetProcAddress, while others call them with a sink attached. Every
// resolution of a name hands out the same wrapper, and every call is recorded
// with its entry point's cbid. .ci/native.sh runs it under ThreadSanitizer too,
// where a data race in the hooks is a report.
//
// The program loads the CUPTI and CUDA driver doubles by path (the latter with
// SONAME libcuda.so.1, which is what the hooks wrap), then the hooks library,
// RTLD_LOCAL, and calls its dlsym by hand, as a library's lookup through the
// preloaded interposer would: preloaded, or linked in, it would also serve the
// sanitizers' own lookups while they start, before they can run its code.
//   hooks_tests CUPTI_DOUBLE.so CUDA_DOUBLE.so libskipnative_hooks.so
#include <cuda.h>
#include <cupti.h>
#include <dlfcn.h>

#include <atomic>
#include <cstdio>
#include <thread>
#include <vector>

#include "check.h"
#include "cupti/launch_hooks.h"

namespace {

std::atomic<uint64_t> g_calls{0}, g_wrong_cbid{0};
std::atomic<int> g_expected_cbid{-1};

uint64_t sink_enter(const SkipnativeHookCall*, uint32_t* id) {
  *id = 0;
  return 0;
}
void sink_exit(uint64_t, uint32_t, uint16_t cbid, int) {
  g_calls.fetch_add(1);
  if (int(cbid) != g_expected_cbid.load()) g_wrong_cbid.fetch_add(1);
}
const SkipnativeHookSink kSink{&sink_enter, &sink_exit};

using DlsymFn = void* (*)(void*, const char*);
using SyncFn = CUresult (*)(CUstream);
using ProcFn = CUresult (*)(const char*, void**, int, cuuint64_t, CUdriverProcAddressQueryResult*);

// Whether a and b lie in the same loaded object.
bool in_object(void* a, void* b) {
  Dl_info x{}, y{};
  return a && b && dladdr(a, &x) && dladdr(b, &y) && x.dli_fbase == y.dli_fbase;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: hooks_tests CUPTI_DOUBLE.so CUDA_DOUBLE.so HOOKS.so\n");
    return 2;
  }
  // the CUPTI double first: the driver double runs on its simulated GPU
  void* cupti = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
  void* cuda = cupti ? dlopen(argv[2], RTLD_NOW | RTLD_GLOBAL) : nullptr;
  void* hooks = cuda ? dlopen(argv[3], RTLD_NOW | RTLD_LOCAL) : nullptr;
  if (hooks == nullptr) {
    std::fprintf(stderr, "hooks tests: %s\n", dlerror());
    return 2;
  }
  auto lookup = reinterpret_cast<DlsymFn>(dlsym(hooks, "dlsym"));
  auto attach = reinterpret_cast<SkipnativeHooksAttachFn>(dlsym(hooks, "skipnative_hooks_attach2"));
  auto unwrapped =
      reinterpret_cast<SkipnativeHooksCountFn>(dlsym(hooks, "skipnative_hooks_unwrapped"));
  auto proc = lookup ? reinterpret_cast<ProcFn>(lookup(cuda, "cuGetProcAddress_v2")) : nullptr;
  CHECK(attach && unwrapped && proc);
  if (!attach || !unwrapped || !proc) return 1;
  attach(&kSink);
  g_expected_cbid = CUPTI_DRIVER_TRACE_CBID_cuStreamSynchronize;

  const int threads = 4, rounds = 200;
  std::vector<void*> via_dlsym(threads), via_proc(threads);
  std::atomic<int> ready{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < threads; ++i)
    ts.emplace_back([&, i] {
      ready.fetch_add(1);
      while (ready.load() < threads) {
      }
      for (int r = 0; r < rounds; ++r) {
        void* a = lookup(cuda, "cuStreamSynchronize");
        void* b = nullptr;
        proc("cuStreamSynchronize", &b, 12000, CU_GET_PROC_ADDRESS_DEFAULT, nullptr);
        if (a) reinterpret_cast<SyncFn>(a)(nullptr);
        if (b) reinterpret_cast<SyncFn>(b)(nullptr);
        via_dlsym[i] = a;
        via_proc[i] = b;
      }
    });
  for (auto& t : ts) t.join();
  attach(nullptr);

  for (int i = 0; i < threads; ++i) {
    CHECK(via_dlsym[i] != nullptr && via_dlsym[i] == via_dlsym[0]);
    CHECK(via_proc[i] != nullptr && via_proc[i] == via_proc[0]);
  }
  CHECK(!in_object(via_dlsym[0], dlsym(cuda, "cuInit")));  // wrapped: not the driver's
  CHECK(!in_object(via_proc[0], dlsym(cuda, "cuInit")));
  CHECK(g_calls.load() == uint64_t(2 * threads * rounds));
  CHECK(g_wrong_cbid.load() == 0);
  CHECK(unwrapped() == 0);
  if (failures) {
    std::fprintf(stderr, "hooks tests: %d failure(s)\n", failures);
    return 1;
  }
  std::printf("hooks tests: all passed\n");
  return 0;
}
