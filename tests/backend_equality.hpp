// tests/backend_equality.hpp: the one backend-equality helper of the tests (MatX style: one test
// body, an executor list).
//
//   same_on_executors(label, f, ref_exec, other_execs...)
//       runs f(ref_exec) and f(e) for every other executor and checks each result equals the
//       first (operator==: bit-identical tokens, estimates, ...). The result must be non-empty,
//       so that a body that computes nothing cannot pass.
#pragma once

#include <doctest/doctest.h>

#include <string>

namespace discdiff_test {

template <class F, class Ref, class... Others>
void same_on_executors(const std::string& label, F&& f, const Ref& ref_exec, const Others&... others) {
  CAPTURE(label);
  const auto ref = f(ref_exec);
  REQUIRE(!ref.empty());
  int which = 0;
  CAPTURE(which);
  auto check_one = [&](const auto& ex) {
    ++which;
    CHECK(f(ex) == ref);
  };
  (check_one(others), ...);
}

}  // namespace discdiff_test
