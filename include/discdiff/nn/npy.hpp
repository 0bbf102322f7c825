// discdiff/nn/npy.hpp: a minimal .npy reader and writer (NumPy format 1.0/2.0,
// little-endian, C order; dtypes <f4 <f8 <i4 <i8 |u1 |b1) for golden files and
// parameter dumps. Host only.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace discdiff {
namespace nn {

/// A loaded array: dtype descriptor, shape and the raw little-endian bytes.
struct NpyArray {
  std::string descr;
  std::vector<std::size_t> shape;
  std::vector<char> bytes;

  std::size_t size() const {
    std::size_t n = 1;
    for (auto s : shape) n *= s;
    return n;
  }

  /// The elements converted to U (from any supported dtype).
  template <class U>
  std::vector<U> as() const {
    const std::size_t n = size();
    std::vector<U> out(n);
    auto conv = [&](auto tag) {
      using S = decltype(tag);
      for (std::size_t i = 0; i < n; ++i) {
        S v;
        std::memcpy(&v, bytes.data() + i * sizeof(S), sizeof(S));
        out[i] = static_cast<U>(v);
      }
    };
    if (descr == "<f4") conv(float{});
    else if (descr == "<f8") conv(double{});
    else if (descr == "<i4") conv(std::int32_t{});
    else if (descr == "<i8") conv(std::int64_t{});
    else if (descr == "|u1" || descr == "|b1") conv(std::uint8_t{});
    else throw std::runtime_error("npy: unsupported dtype '" + descr + "'");
    return out;
  }
};

namespace detail {
inline std::size_t npy_itemsize(const std::string& d) {
  if (d == "<f4" || d == "<i4") return 4;
  if (d == "<f8" || d == "<i8") return 8;
  if (d == "|u1" || d == "|b1") return 1;
  return 0;
}
inline std::string npy_field(const std::string& h, const std::string& key, const std::string& path) {
  const auto k = h.find("'" + key + "'");
  if (k == std::string::npos) throw std::runtime_error("npy: " + path + ": header lacks '" + key + "'");
  auto c = h.find(':', k);
  ++c;
  while (c < h.size() && h[c] == ' ') ++c;
  return h.substr(c);
}
}  // namespace detail

/// Read a .npy file. Throws std::runtime_error if it cannot be opened or parsed.
inline NpyArray load_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("npy: cannot open '" + path + "'");
  char magic[8];
  in.read(magic, 8);
  if (!in || std::memcmp(magic, "\x93NUMPY", 6) != 0)
    throw std::runtime_error("npy: '" + path + "' is not a .npy file");
  std::uint32_t hlen = 0;
  if (magic[6] == 1) {
    unsigned char b[2];
    in.read(reinterpret_cast<char*>(b), 2);
    hlen = b[0] | (b[1] << 8);
  } else {
    unsigned char b[4];
    in.read(reinterpret_cast<char*>(b), 4);
    hlen = b[0] | (b[1] << 8) | (b[2] << 16) | (std::uint32_t(b[3]) << 24);
  }
  std::string h(hlen, ' ');
  in.read(&h[0], hlen);
  NpyArray a;
  std::string d = detail::npy_field(h, "descr", path);
  a.descr = d.substr(1, d.find('\'', 1) - 1);
  if (detail::npy_itemsize(a.descr) == 0)
    throw std::runtime_error("npy: " + path + ": unsupported dtype '" + a.descr + "'");
  if (detail::npy_field(h, "fortran_order", path).rfind("False", 0) != 0)
    throw std::runtime_error("npy: " + path + ": Fortran order is not supported");
  std::string s = detail::npy_field(h, "shape", path);
  s = s.substr(1, s.find(')') - 1);
  std::size_t pos = 0;
  while (pos < s.size()) {
    while (pos < s.size() && (s[pos] == ' ' || s[pos] == ',')) ++pos;
    if (pos >= s.size()) break;
    std::size_t end = pos;
    while (end < s.size() && s[end] >= '0' && s[end] <= '9') ++end;
    a.shape.push_back(std::stoull(s.substr(pos, end - pos)));
    pos = end;
  }
  a.bytes.resize(a.size() * detail::npy_itemsize(a.descr));
  in.read(a.bytes.data(), std::streamsize(a.bytes.size()));
  if (!in) throw std::runtime_error("npy: '" + path + "' is truncated");
  return a;
}

namespace detail {
template <class U> struct NpyDescr;
template <> struct NpyDescr<float> { static constexpr const char* v = "<f4"; };
template <> struct NpyDescr<double> { static constexpr const char* v = "<f8"; };
template <> struct NpyDescr<std::int32_t> { static constexpr const char* v = "<i4"; };
template <> struct NpyDescr<std::int64_t> { static constexpr const char* v = "<i8"; };
}  // namespace detail

/// Write a C-order .npy file (format 1.0) of shape `shape` from data.
template <class U>
void save_npy(const std::string& path, const U* data, const std::vector<std::size_t>& shape) {
  std::string h = std::string("{'descr': '") + detail::NpyDescr<U>::v +
                  "', 'fortran_order': False, 'shape': (";
  std::size_t n = 1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    h += std::to_string(shape[i]) + (shape.size() == 1 ? "," : (i + 1 < shape.size() ? ", " : ""));
    n *= shape[i];
  }
  h += "), }";
  while ((10 + h.size() + 1) % 64 != 0) h += ' ';
  h += '\n';
  std::ofstream out(path, std::ios::binary);
  if (!out) throw std::runtime_error("npy: cannot write '" + path + "'");
  out.write("\x93NUMPY\x01\x00", 8);
  const unsigned char hl[2] = {static_cast<unsigned char>(h.size() & 0xff),
                               static_cast<unsigned char>(h.size() >> 8)};
  out.write(reinterpret_cast<const char*>(hl), 2);
  out.write(h.data(), std::streamsize(h.size()));
  out.write(reinterpret_cast<const char*>(data), std::streamsize(n * sizeof(U)));
}

}  // namespace nn
}  // namespace discdiff
