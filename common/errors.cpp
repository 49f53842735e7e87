// common/errors.cpp: see errors.h.
#include "common/errors.h"

#include <sstream>

namespace distill {

std::string number_text(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

std::string without_library_tag(const std::string& what) {
  const auto tag = what.find("] ");
  return what.rfind('[', 0) == 0 && tag != std::string::npos ? what.substr(tag + 2) : what;
}

}  // namespace distill
