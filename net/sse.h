// net/sse.h: server-sent events (the text/event-stream framing of streamed OpenAI responses), decoded
// incrementally: bytes go in as they arrive, complete events come out. Pure: no sockets, no clocks. Follows the
// WHATWG rules that matter here: lines end in LF, CRLF or CR; "data:" lines of one event are joined with LF; a
// blank line ends the event; lines starting with ':' are comments (keep-alives); one space after the colon is
// dropped; an event with no data is not dispatched. A bounded buffer keeps a hostile stream from growing memory.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace distill::net {

struct SseEvent {
  std::string event;  // the "event:" field ("" = the default, "message")
  std::string data;   // the "data:" lines, joined with '\n'
  std::string id;     // the last "id:" field seen
};

class SseDecoder {
 public:
  explicit SseDecoder(std::size_t max_event_bytes = 16u << 20) : max_event_bytes_(max_event_bytes) {}
  // Appends bytes (any split, even inside a CRLF) and returns the events they completed, in order. Throws
  // InputError when one event's data would exceed max_event_bytes.
  std::vector<SseEvent> feed(std::string_view bytes);
  // Whether bytes of an unfinished event or line are held (a stream that ends here was cut off).
  bool pending() const { return !line_.empty() || !data_.empty() || has_data_; }

 private:
  void line(std::string_view l, std::vector<SseEvent>& out);
  std::size_t max_event_bytes_;
  std::string line_, data_, event_, id_;
  bool has_data_ = false, after_cr_ = false;
};

}  // namespace distill::net
