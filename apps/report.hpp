// apps/report.hpp: a small text table that prints aligned to a terminal and as a markdown table
// (shared by the subcommands that report results).
#pragma once

#include <algorithm>
#include <cstdio>
#include <ostream>
#include <string>
#include <vector>

namespace discdiff {
namespace app {

class Table {
 public:
  explicit Table(std::vector<std::string> header, std::vector<bool> right_align = {})
      : header_(std::move(header)), right_(std::move(right_align)) {
    right_.resize(header_.size(), false);
  }
  void add(std::vector<std::string> row) {
    row.resize(header_.size());
    rows_.push_back(std::move(row));
  }
  std::size_t size() const { return rows_.size(); }

  /// Aligned plain text.
  void print(std::ostream& os) const {
    std::vector<std::size_t> w(header_.size());
    for (std::size_t c = 0; c < header_.size(); ++c) {
      w[c] = header_[c].size();
      for (const auto& r : rows_) w[c] = std::max(w[c], r[c].size());
    }
    auto line = [&](const std::vector<std::string>& r) {
      for (std::size_t c = 0; c < r.size(); ++c) {
        const std::string pad(w[c] - r[c].size(), ' ');
        os << (c ? "  " : "") << (right_[c] ? pad + r[c] : r[c] + (c + 1 < r.size() ? pad : ""));
      }
      os << "\n";
    };
    line(header_);
    std::vector<std::string> rule;
    for (std::size_t c = 0; c < header_.size(); ++c) rule.emplace_back(w[c], '-');
    line(rule);
    for (const auto& r : rows_) line(r);
  }

  /// A GitHub-flavoured markdown table ('|' in cells escaped).
  void markdown(std::ostream& os) const {
    auto cell = [](const std::string& s) {
      std::string o;
      for (char ch : s) o += ch == '|' ? std::string("\\|") : std::string(1, ch);
      return o;
    };
    os << "|";
    for (const auto& h : header_) os << " " << cell(h) << " |";
    os << "\n|";
    for (std::size_t c = 0; c < header_.size(); ++c) os << (right_[c] ? "---:|" : "---|");
    os << "\n";
    for (const auto& r : rows_) {
      os << "|";
      for (const auto& v : r) os << " " << cell(v) << " |";
      os << "\n";
    }
  }

 private:
  std::vector<std::string> header_;
  std::vector<bool> right_;
  std::vector<std::vector<std::string>> rows_;
};

/// printf-style formatting into a std::string.
template <class... A>
std::string fmt(const char* f, A... a) {
  char buf[256];
  std::snprintf(buf, sizeof buf, f, a...);
  return buf;
}

}  // namespace app
}  // namespace discdiff
