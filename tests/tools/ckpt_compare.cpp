// tests/tools/ckpt_compare.cpp: compares two discdiff checkpoints tensor by tensor (the float32
// tensors: params, adam.m, adam.v, ema, w_raw, ...; the named tensors of a checkpoint grouped
// the same way), for the backend-parity test.
//
//   discdiff_ckpt_compare A B [rtol]
//
// For every tensor of A (B must hold the same names and shapes) it prints the largest absolute
// difference, the largest |a| and their ratio (the normwise relative difference
// max|a - b| / max|a|), and the largest elementwise relative difference |a - b| / max(|a|, |b|)
// over entries with max(|a|, |b|) >= 1e-3 max|a|. Exit 0 when every tensor's normwise relative
// difference is <= rtol (default 1e-5), 1 otherwise, 2 on unreadable or mismatched files.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <string>
#include <vector>

#include <discdiff/io/safetensors.hpp>

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    std::fprintf(stderr, "usage: %s A.safetensors B.safetensors [rtol]\n", argv[0]);
    return 2;
  }
  const double rtol = argc == 4 ? std::atof(argv[3]) : 1e-5;
  try {
    const auto a = discdiff::io::SafetensorsFile::load(argv[1]);
    const auto b = discdiff::io::SafetensorsFile::load(argv[2]);
    if (a.names() != b.names()) {
      std::fprintf(stderr, "the checkpoints hold different tensors\n");
      return 2;
    }
    // Named checkpoints hold one tensor per parameter (and per moment / EMA entry): they are
    // compared as the groups of the flat layout (params, adam.m, adam.v, ema, w_*), so that the
    // normwise difference is over the whole slab as before.
    auto group = [](const std::string& n) -> std::string {
      for (const char* g : {"adam.m", "adam.v", "ema"}) {
        const std::string pre = std::string(g) + ".";
        if (n == g || n.rfind(pre, 0) == 0) return g;
      }
      if (n.rfind("w_", 0) == 0) return n;
      return "params";
    };
    std::vector<std::string> order;
    std::map<std::string, std::pair<std::vector<float>, std::vector<float>>> data;
    for (const auto& name : a.names()) {
      const auto& ti = a.info(name);
      if (ti.dtype != discdiff::io::Dtype::F32) continue;
      const std::vector<float> x = a.read<float>(name, ti.shape);
      const std::vector<float> y = b.read<float>(name, ti.shape);
      const std::string g = group(name);
      if (!data.count(g)) order.push_back(g);
      auto& d = data[g];
      d.first.insert(d.first.end(), x.begin(), x.end());
      d.second.insert(d.second.end(), y.begin(), y.end());
    }
    bool ok = true;
    for (const auto& g : order) {
      const std::vector<float>& x = data[g].first;
      const std::vector<float>& y = data[g].second;
      double dmax = 0, amax = 0, emax = 0;
      for (std::size_t i = 0; i < x.size(); ++i) {
        dmax = std::max(dmax, std::abs(double(x[i]) - double(y[i])));
        amax = std::max(amax, std::abs(double(x[i])));
      }
      for (std::size_t i = 0; i < x.size(); ++i) {
        const double m = std::max(std::abs(double(x[i])), std::abs(double(y[i])));
        if (m >= 1e-3 * amax && m > 0) emax = std::max(emax, std::abs(double(x[i]) - double(y[i])) / m);
      }
      const double rel = amax > 0 ? dmax / amax : dmax;
      const bool pass = rel <= rtol;
      ok = ok && pass;
      std::printf("%-10s %9zu entries  max|a-b| %.3e  max|a| %.3e  normwise rel %.3e  elementwise rel %.3e  %s\n",
                  g.c_str(), x.size(), dmax, amax, rel, emax, pass ? "ok" : "FAIL");
    }
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
}
