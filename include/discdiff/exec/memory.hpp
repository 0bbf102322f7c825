// discdiff/exec/memory.hpp: memory spaces, the owning Buffer, and explicit copies.
//
// A memory space is a type with host-side allocate/deallocate and a flag that says whether
// host code may dereference its pointers:
//   HostSpace    malloc'd host memory (every host executor: sequential, OpenMP, Thrust-OMP);
//   DeviceSpace  CUDA global memory (cudaMalloc), only under nvcc (DISCDIFF_HAVE_DEVICE_SPACE).
// Every executor names its space (`typename Exec::memory_space`); a kernel keeps taking raw
// pointers, which must lie in the space of the executor that runs it.
//
// Buffer<T, Space> owns n elements of one space (move-only; contents are uninitialised after
// construction or resize). Moving data between spaces is always explicit:
//   copy_n(dst_space_tag, dst, src_space_tag, src, n)  or  copy(dst_buffer, src_buffer).
// Nothing converts implicitly: a Buffer<T, DeviceSpace> has no operator[] and no iterators.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__CUDACC__)
#include <cuda_runtime.h>
#define DISCDIFF_HAVE_DEVICE_SPACE 1
#else
#define DISCDIFF_HAVE_DEVICE_SPACE 0
#endif

namespace discdiff {

/// Host memory (std::malloc / std::free). Host code may dereference its pointers.
struct HostSpace {
  static constexpr const char* name = "host";
  static constexpr bool host_accessible = true;
  static void* allocate(std::size_t bytes) {
    if (bytes == 0) return nullptr;
    void* p = std::malloc(bytes);
    if (!p) throw std::bad_alloc();
    return p;
  }
  static void deallocate(void* p) noexcept { std::free(p); }
};

#if DISCDIFF_HAVE_DEVICE_SPACE
/// CUDA global memory of the current device (cudaMalloc / cudaFree). Host code must not
/// dereference its pointers; copy_n moves data in and out.
struct DeviceSpace {
  static constexpr const char* name = "cuda";
  static constexpr bool host_accessible = false;
  static void* allocate(std::size_t bytes) {
    if (bytes == 0) return nullptr;
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess)
      throw std::runtime_error(std::string("discdiff::DeviceSpace: cudaMalloc of ") +
                               std::to_string(bytes) + " bytes failed: " + cudaGetErrorString(e));
    return p;
  }
  static void deallocate(void* p) noexcept { cudaFree(p); }
};
#endif

namespace detail {
#if DISCDIFF_HAVE_DEVICE_SPACE
template <class Dst, class Src>
cudaMemcpyKind memcpy_kind() {
  if (Dst::host_accessible && Src::host_accessible) return cudaMemcpyHostToHost;
  if (Dst::host_accessible) return cudaMemcpyDeviceToHost;
  if (Src::host_accessible) return cudaMemcpyHostToDevice;
  return cudaMemcpyDeviceToDevice;
}
#endif
}  // namespace detail

/// Copies n elements from src (in space SrcSpace) to dst (in space DstSpace). The ranges
/// must not overlap. Throws std::runtime_error when a device copy fails.
template <class DstSpace, class SrcSpace, class T>
void copy_n(DstSpace, T* dst, SrcSpace, const T* src, std::size_t n) {
  static_assert(std::is_trivially_copyable<T>::value, "copy_n: T must be trivially copyable");
  if (n == 0) return;
  if constexpr (DstSpace::host_accessible && SrcSpace::host_accessible) {
    std::memcpy(dst, src, n * sizeof(T));
  } else {
#if DISCDIFF_HAVE_DEVICE_SPACE
    const cudaError_t e =
        cudaMemcpy(dst, src, n * sizeof(T), detail::memcpy_kind<DstSpace, SrcSpace>());
    if (e != cudaSuccess)
      throw std::runtime_error(std::string("discdiff::copy_n: cudaMemcpy failed: ") +
                               cudaGetErrorString(e));
#endif
  }
}

/// n elements of T in the memory space Space (contents uninitialised). Move-only.
template <class T, class Space = HostSpace>
class Buffer {
  static_assert(std::is_trivially_copyable<T>::value, "Buffer: T must be trivially copyable");

 public:
  using value_type = T;
  using memory_space = Space;

  Buffer() = default;
  explicit Buffer(std::size_t n) { resize(n); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept : p_(o.p_), n_(o.n_) {
    o.p_ = nullptr;
    o.n_ = 0;
  }
  Buffer& operator=(Buffer&& o) noexcept {
    if (this != &o) {
      Space::deallocate(p_);
      p_ = o.p_;
      n_ = o.n_;
      o.p_ = nullptr;
      o.n_ = 0;
    }
    return *this;
  }
  ~Buffer() { Space::deallocate(p_); }

  /// Reallocates to n elements when the size changes (contents are then lost).
  void resize(std::size_t n) {
    if (n == n_) return;
    Space::deallocate(p_);
    p_ = nullptr;
    n_ = 0;
    p_ = static_cast<T*>(Space::allocate(n * sizeof(T)));
    n_ = n;
  }
  void clear() { resize(0); }

  T* data() { return p_; }
  const T* data() const { return p_; }
  std::size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }

  // Element access and iteration exist only where host code may dereference the memory.
  template <class S = Space, class = std::enable_if_t<S::host_accessible>>
  T& operator[](std::size_t i) { return p_[i]; }
  template <class S = Space, class = std::enable_if_t<S::host_accessible>>
  const T& operator[](std::size_t i) const { return p_[i]; }
  template <class S = Space, class = std::enable_if_t<S::host_accessible>>
  T* begin() { return p_; }
  template <class S = Space, class = std::enable_if_t<S::host_accessible>>
  T* end() { return p_ + n_; }
  template <class S = Space, class = std::enable_if_t<S::host_accessible>>
  const T* begin() const { return p_; }
  template <class S = Space, class = std::enable_if_t<S::host_accessible>>
  const T* end() const { return p_ + n_; }

 private:
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

/// dst <- src between any two spaces (sizes must match; throws std::invalid_argument).
template <class T, class DS, class SS>
void copy(Buffer<T, DS>& dst, const Buffer<T, SS>& src) {
  if (dst.size() != src.size())
    throw std::invalid_argument("discdiff::copy: destination holds " + std::to_string(dst.size()) +
                                " elements, source " + std::to_string(src.size()));
  copy_n(DS{}, dst.data(), SS{}, src.data(), src.size());
}

/// A host std::vector with the contents of a buffer of any space.
template <class T, class S>
std::vector<T> to_host_vector(const Buffer<T, S>& b) {
  std::vector<T> v(b.size());
  copy_n(HostSpace{}, v.data(), S{}, b.data(), b.size());
  return v;
}

/// Fills a buffer of any space from host data (sizes must match; throws std::invalid_argument).
template <class T, class S>
void copy_from_host(Buffer<T, S>& dst, const T* src, std::size_t n) {
  if (dst.size() != n)
    throw std::invalid_argument("discdiff::copy_from_host: destination holds " +
                                std::to_string(dst.size()) + " elements, source " +
                                std::to_string(n));
  copy_n(S{}, dst.data(), HostSpace{}, src, n);
}

}  // namespace discdiff
