// common/errors.cpp: see errors.h.
#include "common/errors.h"

#include <sstream>

namespace distill {

std::string number_text(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

}  // namespace distill
