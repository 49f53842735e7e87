// model/sentencepiece_model.cpp: see sentencepiece_model.h. A minimal protobuf wire-format reader for the few
// fields export needs (field numbers from sentencepiece_model.proto); every other field is skipped.
#include "model/sentencepiece_model.h"

#include <cstdint>
#include <cstring>

#include "common/errors.h"
#include "common/utf8.h"

namespace distill::model {

namespace {

struct Wire {
  std::string_view b;
  std::size_t pos = 0;
  const std::string& src;

  [[noreturn]] void fail(const std::string& what) const {
    throw InputError(src + ": not a SentencePiece model (" + what + " at byte " + std::to_string(pos) + ")");
  }
  bool done() const { return pos >= b.size(); }
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos >= b.size()) fail("truncated varint");
      const auto c = static_cast<unsigned char>(b[pos++]);
      v |= std::uint64_t(c & 0x7F) << shift;
      if (!(c & 0x80)) return v;
    }
    fail("overlong varint");
  }
  std::string_view bytes() {
    const auto n = varint();
    if (n > b.size() - pos) fail("a field runs past the end");
    auto s = b.substr(pos, n);
    pos += n;
    return s;
  }
  float fixed32_float() {
    if (b.size() - pos < 4) fail("truncated float");
    std::uint32_t u = 0;
    for (int i = 0; i < 4; ++i) u |= std::uint32_t(static_cast<unsigned char>(b[pos + i])) << (8 * i);
    pos += 4;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  void skip(int wire_type) {
    switch (wire_type) {
      case 0: varint(); break;
      case 1: if (b.size() - pos < 8) fail("truncated field"); pos += 8; break;
      case 2: bytes(); break;
      case 5: if (b.size() - pos < 4) fail("truncated field"); pos += 4; break;
      default: fail("wire type " + std::to_string(wire_type));
    }
  }
  // Calls f(field, wire_type) for each field of the message; f reads the value or returns false to skip it.
  template <class F>
  void each(F&& f) {
    while (!done()) {
      const auto key = varint();
      const int field = int(key >> 3), wt = int(key & 7);
      if (field == 0) fail("field number 0");
      if (!f(field, wt)) skip(wt);
    }
  }
};

}  // namespace

int SpModel::id_of(std::string_view piece) const {
  for (std::size_t i = 0; i < pieces.size(); ++i)
    if (pieces[i].text == piece) return int(i);
  return -1;
}

SpModel parse_sentencepiece_model(std::string_view bytes, const std::string& source) {
  SpModel m;
  Wire top{bytes, 0, source};
  top.each([&](int field, int wt) {
    if (wt != 2) return false;
    if (field == 1) {  // pieces
      Wire w{top.bytes(), 0, source};
      SpPiece p;
      w.each([&](int f, int t) {
        if (f == 1 && t == 2) return p.text = std::string(w.bytes()), true;
        if (f == 2 && t == 5) return p.score = w.fixed32_float(), true;
        if (f == 3 && t == 0) {
          const auto v = w.varint();
          if (v < 1 || v > 6) w.fail("piece type " + std::to_string(v));
          p.type = SpPiece::Type(v);
          return true;
        }
        return false;
      });
      if (!is_valid_utf8(p.text)) w.fail("piece " + std::to_string(m.pieces.size()) + " is not UTF-8");
      m.pieces.push_back(std::move(p));
      return true;
    }
    if (field == 2) {  // trainer_spec
      Wire w{top.bytes(), 0, source};
      w.each([&](int f, int t) {
        if (t != 0) return false;
        const auto v = w.varint();
        if (f == 3) m.model_type = v == 1 ? "unigram" : v == 2 ? "bpe" : v == 3 ? "word" : v == 4 ? "char" : "?";
        if (f == 35) m.byte_fallback = v != 0;
        if (f == 25) m.split_digits = v != 0;
        if (f == 22) m.split_by_whitespace = v != 0;
        if (f == 24) m.treat_whitespace_as_suffix = v != 0;
        return true;
      });
      return true;
    }
    if (field == 3) {  // normalizer_spec
      Wire w{top.bytes(), 0, source};
      w.each([&](int f, int t) {
        if (f == 1 && t == 2) return m.normalizer = std::string(w.bytes()), true;
        if (t != 0) return false;
        const auto v = w.varint();
        if (f == 3) m.add_dummy_prefix = v != 0;
        if (f == 4) m.remove_extra_whitespaces = v != 0;
        if (f == 5) m.escape_whitespaces = v != 0;
        return true;
      });
      return true;
    }
    return false;
  });
  if (m.pieces.empty()) throw InputError(source + ": not a SentencePiece model (no pieces)");
  return m;
}

}  // namespace distill::model
