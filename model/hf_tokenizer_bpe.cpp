// model/hf_tokenizer_bpe.cpp: the tokenizer.json BPE model: vocabulary, merges (applied lowest rank first),
// unk and byte fallback, ignore_merges, and a bounded per-word cache.
#include <algorithm>
#include <cstdio>
#include <functional>
#include <queue>

#include "common/utf8.h"
#include "model/hf_tokenizer_impl.h"

namespace distill::model::hf_detail {

Bpe::Bpe(const json& model, const Ctx& ctx) {
  const std::string path = "model";
  if (!model.is_object()) ctx.fail(path, "is not an object");
  if (const json* t = find_member(model, "type"); t && string_at(*t, path + ".type", ctx) != "BPE")
    ctx.fail(path + ".type", show(t->get<std::string>()) + " is not supported (expected BPE)");
  if (const json* d = find_member(model, "dropout"); d && !(d->is_number() && d->get<double>() == 0.0))
    ctx.fail(path + ".dropout", "is set; BPE dropout is a training-time option and is not supported");
  ignore_merges_ = bool_member(model, "ignore_merges", false, path, ctx);
  byte_fallback_ = bool_member(model, "byte_fallback", false, path, ctx);
  fuse_unk_ = bool_member(model, "fuse_unk", false, path, ctx);
  if (const json* p = find_member(model, "continuing_subword_prefix"))
    prefix_ = string_at(*p, path + ".continuing_subword_prefix", ctx);
  if (const json* s = find_member(model, "end_of_word_suffix"))
    suffix_ = string_at(*s, path + ".end_of_word_suffix", ctx);
  read_vocab(member(model, "vocab", path, ctx), ctx);
  if (const json* u = find_member(model, "unk_token")) {
    unk_token_ = string_at(*u, path + ".unk_token", ctx);
    if (auto id = id_of(*unk_token_)) unk_id_ = *id;
  }
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    byte_ids_[b] = id_of(buf).value_or(-1);
  }
  if (const json* m = find_member(model, "merges")) read_merges(*m, ctx);
}

void Bpe::tokenize(const std::string& word, std::vector<int>& out) const {
  if (word.empty()) return;
  if (ignore_merges_)
    if (auto id = id_of(word)) return out.push_back(*id);
  {
    std::lock_guard lock(cache_mutex_);
    if (auto it = cache_.find(word); it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int> ids = merge_word(word);
  out.insert(out.end(), ids.begin(), ids.end());
  if (word.size() > kCacheWordBytes) return;  // a long run (of spaces, digits...) is rarely seen twice
  std::lock_guard lock(cache_mutex_);
  if (cache_.size() >= kCacheLimit) cache_.clear();  // bounded: a long-running process sees unbounded text
  cache_.emplace(word, std::move(ids));
}

void Bpe::read_vocab(const json& vocab, const Ctx& ctx) {
  if (!vocab.is_object()) ctx.fail("model.vocab", "is not an object of token: id");
  vocab_.reserve(vocab.size());
  std::vector<bool> id_taken;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    // The path is built only for a message: building it for 150k entries would double the load time.
    const json& v = it.value();
    const bool plain = v.is_number_unsigned() && v.get<std::uint64_t>() <= std::uint64_t(kMaxId);
    if (!plain || !is_valid_utf8(it.key())) {
      const std::string path = "model.vocab[" + show(it.key()) + "]";
      if (!is_valid_utf8(it.key())) ctx.fail(path, "is not valid UTF-8");
      int_at(v, 0, kMaxId, path, ctx);
    }
    const int id = int(v.get<std::uint64_t>());
    vocab_[it.key()] = id;
    if (std::size_t(id) >= id_to_token_.size()) id_to_token_.resize(std::size_t(id) + 1), id_taken.resize(id_to_token_.size());
    if (id_taken[std::size_t(id)])  // decoding could give back only one of the two
      ctx.fail("model.vocab[" + show(it.key()) + "]", "has id " + std::to_string(id) + ", already the id of " +
                                                        show(id_to_token_[std::size_t(id)]));
    id_taken[std::size_t(id)] = true;
    id_to_token_[std::size_t(id)] = it.key();
  }
}

// Merges are "a b" strings (split on the one space) or [a, b] pairs; rank = position in the list.
void Bpe::read_merges(const json& merges, const Ctx& ctx) {
  if (!merges.is_array()) ctx.fail("model.merges", "is not an array");
  merges_.reserve(merges.size());
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string path = "model.merges[" + std::to_string(rank) + "]";
    const json& m = merges[rank];
    std::string a, b, shown;
    if (m.is_string()) {
      shown = m.get_ref<const std::string&>();  // UTF-8 is checked by the vocabulary lookups below
      const auto sp = shown.find(' ');
      if (sp == std::string::npos || shown.find(' ', sp + 1) != std::string::npos)
        ctx.fail(path, show(shown) + " is not two tokens separated by one space");
      a = shown.substr(0, sp), b = shown.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2) {
      a = string_at(m[0], path + "[0]", ctx), b = string_at(m[1], path + "[1]", ctx);
      shown = a + " " + b;
    } else {
      ctx.fail(path, "is neither \"a b\" nor [\"a\", \"b\"]");
    }
    const std::string merged = a + (!prefix_.empty() && b.rfind(prefix_, 0) == 0 ? b.substr(prefix_.size()) : b);
    auto need = [&](const std::string& t) {
      auto id = id_of(t);
      if (!id) ctx.fail(path, show(shown) + ": " + show(t) + " is not in the vocab");
      return *id;
    };
    const int ia = need(a), ib = need(b), im = need(merged);
    merges_[key(ia, ib)] = {int(rank), im};
  }
}

// GCC 12 at -O3 calls pending_unk below maybe-uninitialized in this translation unit (it did not while the BPE
// shared one with the rest of the tokenizer): a false positive, since it is read only when engaged.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// The word's initial symbols: one per character (prefix/suffix applied), unknown characters as byte pieces
// when byte_fallback, else as unk (consecutive unks fused when fuse_unk), else dropped (as tokenizers).
std::vector<int> Bpe::initial_symbols(const std::string& word) const {
  std::vector<int> ids;
  std::optional<int> pending_unk;  // an unk not yet pushed, so a following one can fuse into it
  for (std::size_t i = 0; i < word.size();) {
    const std::size_t len = char_len(static_cast<unsigned char>(word[i]));
    std::string s = word.substr(i, len);
    if (i > 0) s.insert(0, prefix_);
    if (i + len == word.size()) s += suffix_;
    const std::string raw = word.substr(i, len);
    i += len;
    if (auto id = id_of(s)) {
      if (pending_unk) ids.push_back(*pending_unk), pending_unk.reset();
      ids.push_back(*id);
      continue;
    }
    // tokenizers leaves a pending unk pending across byte pieces (it lands after them, and a later unk fuses
    // into it); only a vocabulary hit flushes it.
    const bool bytes_known = std::all_of(raw.begin(), raw.end(),
                                         [&](char c) { return byte_ids_[static_cast<unsigned char>(c)] >= 0; });
    if (byte_fallback_ && bytes_known) {
      for (unsigned char c : raw) ids.push_back(byte_ids_[c]);
      continue;
    }
    if (!unk_id_) continue;
    if (pending_unk && !fuse_unk_) ids.push_back(*pending_unk);
    pending_unk = unk_id_;
  }
  if (pending_unk) ids.push_back(*pending_unk);
  return ids;
}

#pragma GCC diagnostic pop

// Applies merges lowest rank first (ties: leftmost), on a linked list of symbols with a queue of candidate
// pairs; stale queue entries are recognised and skipped, as tokenizers' Word::merge_all does.
std::vector<int> Bpe::merge_word(const std::string& word) const {
  std::vector<int> sym = initial_symbols(word);
  const int n = int(sym.size());
  std::vector<int> prev(n), next(n);
  std::vector<bool> alive(n, true);
  for (int i = 0; i < n; ++i) prev[i] = i - 1, next[i] = i + 1 < n ? i + 1 : -1;
  struct Cand {
    int rank, pos, new_id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> queue;
  auto consider = [&](int pos) {
    if (pos < 0 || next[pos] < 0) return;
    if (auto it = merges_.find(key(sym[pos], sym[next[pos]])); it != merges_.end())
      queue.push({it->second.first, pos, it->second.second});
  };
  for (int i = 0; i + 1 < n; ++i) consider(i);
  while (!queue.empty()) {
    const Cand top = queue.top();
    queue.pop();
    if (!alive[top.pos] || next[top.pos] < 0) continue;
    const int right = next[top.pos];
    auto it = merges_.find(key(sym[top.pos], sym[right]));
    if (it == merges_.end() || it->second.second != top.new_id) continue;  // stale
    sym[top.pos] = top.new_id;
    alive[right] = false;
    next[top.pos] = next[right];
    if (next[right] >= 0) prev[next[right]] = top.pos;
    consider(prev[top.pos]);
    consider(top.pos);
  }
  std::vector<int> out;
  for (int i = n > 0 ? 0 : -1; i >= 0; i = next[i]) out.push_back(sym[i]);
  return out;
}

}  // namespace distill::model::hf_detail
