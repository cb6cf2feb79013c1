// A growable column of fixed-size rows for the reader's tables.
//
// On Linux a column lives in its own anonymous mapping and grows with mremap:
// no row is copied as it grows, and the pages past its end are never touched,
// so a column costs its rows' memory whatever its capacity. (A std::vector
// copies every row at each doubling, and the freed blocks stay in the heap of
// the allocator, which keeps them resident.) Elsewhere it grows with realloc.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace skipnative::kineto {

template <class T>
class Column {
  static_assert(std::is_trivially_copyable_v<T>, "rows are moved as bytes");

 public:
  Column() = default;
  Column(const Column&) = delete;
  Column& operator=(const Column&) = delete;
  ~Column() { release(); }

  void push_back(const T& row) {
    if (size_ == cap_) grow();
    data_[size_++] = row;
  }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T* data() { return data_; }
  const T* data() const { return data_; }
  T& operator[](size_t k) { return data_[k]; }
  const T& operator[](size_t k) const { return data_[k]; }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }

 private:
  static constexpr size_t kFirstBytes = size_t(1) << 16;

  void grow() {
    const size_t old_bytes = cap_ * sizeof(T);
    const size_t bytes = old_bytes ? old_bytes * 2 : kFirstBytes;
    void* p;
#if defined(__linux__)
    p = data_ ? mremap(data_, old_bytes, bytes, MREMAP_MAYMOVE)
              : mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
#else
    p = std::realloc(data_, bytes);
    if (!p) throw std::bad_alloc();
#endif
    data_ = static_cast<T*>(p);
    cap_ = bytes / sizeof(T);
  }
  void release() {
    if (!data_) return;
#if defined(__linux__)
    munmap(data_, cap_ * sizeof(T));
#else
    std::free(data_);
#endif
    data_ = nullptr;
    size_ = cap_ = 0;
  }

  T* data_ = nullptr;
  size_t size_ = 0, cap_ = 0;
};

}  // namespace skipnative::kineto
