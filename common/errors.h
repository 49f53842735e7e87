// common/errors.h: the two error kinds every library throws, and which exit code each one maps to.
// Libraries throw; only cli/ catches, prints and chooses the exit code (0 ok, 1 runtime failure, 2 bad input).
#pragma once

#include <stdexcept>
#include <string>

namespace distill {

// Bad input or usage: a malformed file, an unknown config key, a store that is not ours. Exit code 2.
// The message names the file, line or key and says what was expected.
struct InputError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Something went wrong while doing valid work (I/O failure, SQLite busy, a bug). Exit code 1.
struct RuntimeFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A number as a message shows the value given: its shortest form ("0.6", "1e-05", "nan", "inf").
std::string number_text(double v);

// A parser's message without its library tag: "[json.exception.parse_error.101] parse error at ..." -> "parse
// error at ...".
std::string without_library_tag(const std::string& what);

}  // namespace distill
