// net/http.h: the one small HTTP layer under the remote teacher and `distill serve`: URLs (parsed, and shown
// without credentials), a client with timeouts that streams a response body to a callback, and a server with a
// thread per open connection (started as connections come, up to a cap, so idle connections held open do not keep
// others waiting), a body cap and JSON error bodies. Built on cpp-httplib (Debian's libcpp-httplib-dev), which only
// net/http.cpp includes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace distill::net {

struct Url {
  std::string scheme;     // http | https
  std::string host;       // as written ([::1] keeps its brackets)
  int port = 0;           // the scheme's default when not written
  std::string base_path;  // "/v1" for http://h:8000/v1 (no trailing slash; "" for none)
  std::string user, password;  // from user:password@ (never shown)

  std::string origin() const;  // scheme://host:port
};

// http(s)://[user[:password]@]host[:port][/path]; InputError naming `what` (a flag) otherwise. A query or fragment
// is refused: keys belong in --api-key-env, not in URLs that land in logs.
Url parse_url(std::string_view text, std::string_view what = "URL");

// The URL as it may be shown and stored: no user or password.
std::string redact_url(const Url& u);

// Whether `given` equals `secret` (a token or key), in a time that does not depend on where they differ.
bool same_secret(std::string_view given, std::string_view secret);

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpOptions {
  double connect_timeout_s = 10;
  double read_timeout_s = 600;   // the longest wait for the next bytes of a response
  double write_timeout_s = 60;
};

struct HttpResponse {
  int status = 0;              // 0: no HTTP answer (refused, reset, timed out, aborted); `error` says which
  std::string error;           // transport error, when status is 0
  std::string content_type;
  std::optional<std::string> retry_after;
  std::string body;            // the body, unless it went to on_body
  bool streamed = false;       // the body went to on_body
};

// One connection to one origin, kept alive between requests; use one per thread. stop() may be called from
// another thread to abort the request in flight.
class HttpClient {
 public:
  HttpClient(const Url& base, HttpOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // POST url.base_path + path. With on_body, a 2xx body is handed over as it arrives, with the response's
  // Content-Type (on_body returning false aborts the request); any other body is collected into `body`.
  using BodyFn = std::function<bool(std::string_view bytes, const std::string& content_type)>;
  HttpResponse post(std::string_view path, const std::string& body, std::string_view content_type,
                    const Headers& headers = {}, const BodyFn& on_body = {});
  HttpResponse get(std::string_view path, const Headers& headers = {});
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---- the server -------------------------------------------------------------------------------------------

struct HttpRequest {
  std::string method, path, body;
  Headers headers;
  Headers params;                    // the query string's name=value pairs, decoded, in order
  std::vector<std::string> matches;  // the route pattern's capture groups
  std::string header(std::string_view name) const;  // case-insensitive; "" when absent
  std::optional<std::string> param(std::string_view name) const;  // the first with that name
};

// A handler's answer: a whole body, or (`stream` set) a body written piece by piece from the connection's
// thread, where write() returns false once the client has gone.
struct HttpReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  Headers headers;
  std::function<void(const std::function<bool(std::string_view)>& write)> stream;
};
using HttpHandler = std::function<HttpReply(const HttpRequest&)>;

struct ServerOptions {
  // Connections served at once, a thread each from the moment they are accepted (an idle one holds its thread until
  // the read or keep-alive timeout), started as they come; past it, connections wait for one to end.
  std::size_t threads = 2048;
  std::size_t max_body_bytes = 8u << 20;   // larger request bodies get 413
  double read_timeout_s = 30, write_timeout_s = 600;
  // The body of an error the handlers did not write (404 route, 413 body, 500 thrown): OpenAI's shape by default.
  std::function<std::string(int status, const std::string& message)> error_body;
};

class HttpServer {
 public:
  explicit HttpServer(ServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // GET or POST; `path` is an ECMAScript regex over the whole path ("/api/sample/(\\d+)"), groups in `matches`.
  void route(const std::string& method, const std::string& path, HttpHandler handler);
  // Binds host:port (0: a free port) and returns the port; RuntimeFailure when it cannot.
  int bind(const std::string& host, int port);
  void serve();  // answers until stop()
  void stop();   // from any thread: stops accepting; serve() returns once the open requests are answered

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace distill::net
