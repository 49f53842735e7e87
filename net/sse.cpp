// net/sse.cpp: see sse.h.
#include "net/sse.h"

#include "common/errors.h"

namespace distill::net {

std::vector<SseEvent> SseDecoder::feed(std::string_view bytes) {
  std::vector<SseEvent> out;
  for (char c : bytes) {
    if (c == '\n' && after_cr_) {  // the LF of a CRLF whose CR already ended the line
      after_cr_ = false;
      continue;
    }
    after_cr_ = c == '\r';
    if (c == '\n' || c == '\r') {
      line(line_, out);
      line_.clear();
      continue;
    }
    if (line_.size() + data_.size() >= max_event_bytes_)
      throw InputError("event stream: an event is longer than " + std::to_string(max_event_bytes_) + " bytes");
    line_.push_back(c);
  }
  return out;
}

void SseDecoder::line(std::string_view l, std::vector<SseEvent>& out) {
  if (l.empty()) {  // a blank line dispatches the event, if it has data
    if (has_data_) out.push_back({event_, data_, id_});
    data_.clear();
    event_.clear();
    has_data_ = false;
    return;
  }
  if (l.front() == ':') return;  // a comment: servers send ": keep-alive"
  const auto colon = l.find(':');
  const std::string_view field = l.substr(0, colon);
  std::string_view value = colon == std::string_view::npos ? std::string_view() : l.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (field == "data") {
    if (has_data_) data_.push_back('\n');
    data_.append(value);
    has_data_ = true;
  } else if (field == "event") {
    event_ = std::string(value);
  } else if (field == "id") {
    id_ = std::string(value);
  }  // "retry" and unknown fields are ignored, as the spec says
}

}  // namespace distill::net
