// studio/studio.h: `distill studio`, a local web app over one store: overview charts, the sample table with
// filters and full-text search, one sample with its problem's other samples, keyboard review, bulk review of a
// filter's result, the curation log with undo, and a problem's eval answers. The page and its script are built
// into the binary (studio/assets); the JSON API under /api reads and writes only through dataset/.
//
// Security: every request carries the session token printed at start-up (the page and reads may give it in
// ?token=; writes only in the X-Distill-Token header, which a page of another origin cannot set: no CSRF); the Host header must name the
// address served (no DNS rebinding); completions reach the page as JSON and are shown as text, under a
// Content-Security-Policy that runs only the page's own script.
#pragma once

#include <functional>
#include <memory>
#include <string>

namespace distill::studio {

struct StudioOptions {
  std::string db;
  std::string host = "127.0.0.1";
  int port = 8765;          // 0: a free one
  std::string user;         // actions are logged as studio:USER
  std::string token;        // "": a random one
  bool read_only = false;   // refuse writes (a store opened read-only)
};

class Studio {
 public:
  explicit Studio(StudioOptions o);
  ~Studio();
  Studio(const Studio&) = delete;
  Studio& operator=(const Studio&) = delete;

  // Binds and answers until stop() or SIGINT/SIGTERM; `listening(url)` is called once bound, with the URL that
  // opens the page (token included).
  void run(const std::function<void(const std::string& url)>& listening);
  void stop();
  bool read_only() const;  // --read-only, or a store this process cannot write
  bool snapshot() const;   // read as it stood at start (dataset::Store::snapshot)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace distill::studio
