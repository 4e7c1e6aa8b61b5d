// slope — the one exception type of the library.
#pragma once

#include <stdexcept>

namespace slope {

// Every error the library reports: says what was wrong and what to do. Never exit(), never print.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace slope
