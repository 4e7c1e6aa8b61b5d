// Wall time per kind of work in a training step, for `slope bench train --profile`
// (docs/training-profile.md). Off by default: a ProfileScope then costs one relaxed load. When
// on, each scope adds its wall time and one call to its label's total. Scopes are opened only
// by the thread that drives the step (outside OpenMP regions), around layer calls that finish
// their parallel work before returning, so a scope's wall time is the work's time on all
// threads.
//
//   { nn::ProfileScope p("matmul c_fc"); nn::matmul_forward(...); }
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace slope::nn {

struct ProfileEntry {
  std::string label;   // "matmul c_fc", "attention backward", ...
  double seconds = 0;  // total wall time
  int64_t calls = 0;
};

// Starts (clearing the totals) or stops recording; not thread-safe against open scopes.
void profile_enable(bool on);
bool profile_enabled();
// The totals since profile_enable(true), in the order each label was first seen.
std::vector<ProfileEntry> profile_entries();

namespace detail {
void profile_add(const char* label, double seconds);
extern bool g_profile_on;
}  // namespace detail

class ProfileScope {
 public:
  // `label` must outlive the profile (a string literal).
  explicit ProfileScope(const char* label) : label_(label) {
    if (detail::g_profile_on) start_ = std::chrono::steady_clock::now(), on_ = true;
  }
  ~ProfileScope() {
    if (on_)
      detail::profile_add(
          label_, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

 private:
  const char* label_;
  std::chrono::steady_clock::time_point start_{};
  bool on_ = false;
};

}  // namespace slope::nn
