// Argument checks shared by the layers (see common.h).
#include <string>

#include "nn/common.h"

namespace slope::nn {

void check_sizes(const char* layer, std::initializer_list<std::pair<const char*, int64_t>> sizes) {
  for (const auto& [name, value] : sizes)
    if (value <= 0)
      throw Error(std::string(layer) + ": " + name + " must be positive, got " +
                  std::to_string(value));
}

void check_given(const char* layer,
                 std::initializer_list<std::pair<const char*, const void*>> ptrs) {
  for (const auto& [name, ptr] : ptrs)
    if (!ptr) throw Error(std::string(layer) + ": " + name + " must be given (got null)");
}

}  // namespace slope::nn
