// A process-wide mutex held across fork(): the forking thread takes it before
// the fork (pthread_atfork) and releases it on both sides after. In the child
// only that thread exists; a lock left held by another thread of the parent
// would never be released there, and a capture started in the child would wait
// on it for ever.
#pragma once

#include <pthread.h>

#include <mutex>

namespace skipnative {

// Registers the handlers for `M` (at static initialisation: `const int x =
// hold_across_fork<m>();`). Code that holds M must not take another such lock,
// so the handlers' order cannot deadlock. Returns pthread_atfork's result.
template <std::mutex& M>
int hold_across_fork() {
  return pthread_atfork([] { M.lock(); }, [] { M.unlock(); }, [] { M.unlock(); });
}

}  // namespace skipnative
