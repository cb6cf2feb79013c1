// Null-kernel launch microbenchmarks: an empty kernel (PTX embedded here, loaded
// with cuModuleLoadData through a dlopen'ed libcuda; no nvcc at build time),
// launched through the driver (cuLaunchKernel), the runtime (cudaLaunchKernel
// on a cudaKernel_t from cudaLibraryLoadData, through a dlopen'ed libcudart) and
// as a CUDA graph of N kernels. Every function returns per-sample nanoseconds.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace skipnative::bench {

class BenchError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class Api { kDriver = 0, kRuntime = 1 };

class LaunchBench {
 public:
  // Loads libcuda (and libcudart when `runtime_dirs` or the process provide it),
  // the primary context of `device`, the module and a non-blocking stream.
  LaunchBench(int device, const std::vector<std::string>& runtime_dirs);
  ~LaunchBench();
  LaunchBench(const LaunchBench&) = delete;
  LaunchBench& operator=(const LaunchBench&) = delete;

  bool has_runtime() const { return runtime_ != nullptr; }
  // Leave the module, library, stream and context reference to the process's
  // end: the destructor then only synchronises (for when another tool has
  // attached CUPTI and may not take an unload under it well).
  void keep_loaded() { keep_loaded_ = true; }
  std::string runtime_path() const { return runtime_path_; }
  std::string device_name() const { return device_name_; }

  // CPU time of each launch call (the stream is drained every `drain` calls,
  // outside the timed calls, so no call waits on a full queue).
  std::vector<double> launch_call(Api api, int n, int drain = 64);
  // Launch + stream synchronize, each timed.
  std::vector<double> roundtrip(Api api, int n);
  // Per-launch time of n back-to-back launches (then one synchronize), per rep.
  std::vector<double> throughput(Api api, int n, int reps);
  // Behind a kernel that spins ~spin_ms, launch null kernels one at a time and
  // time each call: the first call that takes > block_ns marks the queue depth.
  std::vector<double> queue_probe(Api api, int max_launches, double spin_ms);
  // (graph of n kernels: launch + sync) per rep, and (n launches + sync) per rep.
  std::vector<double> graph_launch(int n_kernels, int reps);
  std::vector<double> stream_launches(int n_kernels, int reps);
  // One launch then a synchronize, n times (for launch-to-start under a capture).
  void idle_launches(Api api, int n);

 private:
  bool keep_loaded_ = false;
  void launch(Api api);
  void sync();
  void check(int r, const char* what);

  void* cuda_ = nullptr;
  void* runtime_ = nullptr;
  std::string runtime_path_, device_name_;
  void* ctx_ = nullptr;
  int device_ = 0;
  void* module_ = nullptr;
  void* rt_library_ = nullptr;
  void* fn_null_ = nullptr;
  void* fn_spin_ = nullptr;
  void* rt_kernel_ = nullptr;
  void* stream_ = nullptr;
  struct Fns;
  Fns* f_ = nullptr;
};

// The PTX of the benchmark kernels (for tests: the text is well formed).
const char* null_kernel_ptx();

}  // namespace skipnative::bench
