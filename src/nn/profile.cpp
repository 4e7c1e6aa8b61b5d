// The step profile's totals (see profile.h): a short list searched by label, touched only by
// the thread that drives the step.
#include "nn/profile.h"

namespace slope::nn {

namespace detail {
bool g_profile_on = false;
}  // namespace detail

namespace {
std::vector<ProfileEntry>& entries() {
  static std::vector<ProfileEntry> e;
  return e;
}
}  // namespace

void profile_enable(bool on) {
  entries().clear();
  detail::g_profile_on = on;
}

bool profile_enabled() { return detail::g_profile_on; }

std::vector<ProfileEntry> profile_entries() { return entries(); }

void detail::profile_add(const char* label, double seconds) {
  for (ProfileEntry& e : entries())
    if (e.label == label) {
      e.seconds += seconds, ++e.calls;
      return;
    }
  entries().push_back(ProfileEntry{label, seconds, 1});
}

}  // namespace slope::nn
