// net/http.cpp: see http.h. The only file that includes cpp-httplib.
#include "net/http.h"

#include <nlohmann/json.hpp>

#include <httplib.h>

#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "common/errors.h"

namespace distill::net {

namespace {

[[noreturn]] void bad_url(std::string_view what, std::string_view text, const std::string& why) {
  // The text may hold a password: show only what precedes the '@'-part's end, redacted.
  std::string shown(text);
  if (auto at = shown.rfind('@'); at != std::string::npos)
    if (auto s = shown.find("://"); s != std::string::npos && s < at) shown.replace(s + 3, at - s - 3, "***");
  throw InputError(std::string(what) + " '" + shown + "': " + why);
}

// Seconds as cpp-httplib's (seconds, microseconds) timeout pair.
std::pair<time_t, time_t> sec_usec(double s) {
  const double whole = std::floor(s);
  return {time_t(whole), time_t((s - whole) * 1e6)};
}

// cpp-httplib's task queue as a thread per connection, started when it is accepted, up to `limit` at once (past
// it connections wait for one to end). httplib's own pool has a fixed number of threads: as many idle connections
// held open (each waits out its keep-alive time) made every other client wait behind them.
class ConnectionThreads final : public httplib::TaskQueue {
 public:
  explicit ConnectionThreads(std::size_t limit) : limit_(std::max<std::size_t>(limit, 1)) {}

  void enqueue(std::function<void()> fn) override {
    std::unique_lock lk(m_);
    if (live_ >= limit_) {
      waiting_.push_back(std::move(fn));
      return;
    }
    ++live_;
    lk.unlock();
    try {
      std::thread([this, fn]() mutable { run(std::move(fn)); }).detach();
    } catch (const std::system_error&) {  // no thread to be had: queue it for one that ends
      lk.lock();
      if (--live_ == 0) {
        idle_.notify_all();
        lk.unlock();
        fn();  // none will end to take it: answer it here rather than never
        return;
      }
      waiting_.push_back(std::move(fn));
    }
  }

  void shutdown() override {  // after the listener closed: wait for every connection's thread
    std::unique_lock lk(m_);
    idle_.wait(lk, [&] { return live_ == 0; });
  }

 private:
  void run(std::function<void()> fn) {
    for (;;) {
      fn();
      std::unique_lock lk(m_);
      if (waiting_.empty()) {
        if (--live_ == 0) idle_.notify_all();
        return;
      }
      fn = std::move(waiting_.front());
      waiting_.pop_front();
    }
  }

  std::size_t limit_, live_ = 0;
  std::deque<std::function<void()>> waiting_;
  std::mutex m_;
  std::condition_variable idle_;
};

// A connection is a file descriptor: the soft limit (often 1,024) would refuse connections long before the
// thread cap, so a server raises it to the hard limit, as nginx and Go's runtime do.
void raise_open_file_limit() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur >= r.rlim_max) return;
  r.rlim_cur = r.rlim_max;
  setrlimit(RLIMIT_NOFILE, &r);
}

}  // namespace

bool same_secret(std::string_view given, std::string_view secret) {
  if (given.size() != secret.size()) return false;  // the length is no secret
  unsigned char d = 0;
  for (std::size_t i = 0; i < given.size(); ++i) d |= static_cast<unsigned char>(given[i] ^ secret[i]);
  return d == 0;
}

Url parse_url(std::string_view text, std::string_view what) {
  Url u;
  const auto sep = text.find("://");
  if (sep == std::string_view::npos) bad_url(what, text, "expected http://HOST[:PORT][/PATH] or https://...");
  u.scheme = std::string(text.substr(0, sep));
  for (auto& c : u.scheme) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (u.scheme != "http" && u.scheme != "https") bad_url(what, text, "the scheme must be http or https");
  std::string_view rest = text.substr(sep + 3);
  if (rest.find_first_of("?#") != std::string_view::npos)
    bad_url(what, text, "a query or fragment is not taken (pass keys through --api-key-env)");
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    const auto info = authority.substr(0, at);
    const auto colon = info.find(':');
    u.user = std::string(info.substr(0, colon));
    if (colon != std::string_view::npos) u.password = std::string(info.substr(colon + 1));
    authority = authority.substr(at + 1);
  }
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {  // [IPv6]
    const auto close = authority.find(']');
    if (close == std::string_view::npos) bad_url(what, text, "unclosed '[' in the host");
    u.host = std::string(authority.substr(0, close + 1));
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') bad_url(what, text, "expected ':PORT' after the host");
      port = authority.substr(close + 2);
    }
  } else {
    const auto colon = authority.find(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (u.host.empty() || u.host == "[]") bad_url(what, text, "no host");
  u.port = u.scheme == "https" ? 443 : 80;
  if (!port.data() || port.empty()) {
    if (port.data() && port.empty()) bad_url(what, text, "empty port");
  } else {
    int p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc{} || end != port.data() + port.size() || p < 1 || p > 65535)
      bad_url(what, text, "the port must be a number from 1 to 65535");
    u.port = p;
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  u.base_path = std::string(path);
  return u;
}

std::string Url::origin() const { return scheme + "://" + host + ":" + std::to_string(port); }

std::string redact_url(const Url& u) {
  const bool default_port = (u.scheme == "http" && u.port == 80) || (u.scheme == "https" && u.port == 443);
  return u.scheme + "://" + u.host + (default_port ? "" : ":" + std::to_string(u.port)) + u.base_path;
}

struct HttpClient::Impl {
  Url base;
  httplib::Client client;
  Impl(const Url& u, const HttpOptions& o) : base(u), client(u.origin()) {
    auto [cs, cu] = sec_usec(o.connect_timeout_s);
    auto [rs, ru] = sec_usec(o.read_timeout_s);
    auto [ws, wu] = sec_usec(o.write_timeout_s);
    client.set_connection_timeout(cs, cu);
    client.set_read_timeout(rs, ru);
    client.set_write_timeout(ws, wu);
    client.set_keep_alive(true);
    if (!u.user.empty()) client.set_basic_auth(u.user, u.password);
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
    client.enable_server_certificate_verification(true);
#endif
  }

  HttpResponse send(httplib::Request& req, const Headers& headers, const HttpClient::BodyFn& on_body) {
    for (const auto& [k, v] : headers) req.headers.emplace(k, v);
    HttpResponse out;
    int status = 0;
    req.response_handler = [&](const httplib::Response& r) {
      status = r.status;
      out.content_type = r.get_header_value("Content-Type");
      if (r.has_header("Retry-After")) out.retry_after = r.get_header_value("Retry-After");
      return true;
    };
    req.content_receiver = [&](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
      if (on_body && status >= 200 && status < 300) {
        out.streamed = true;
        return on_body(std::string_view(data, n), out.content_type);
      }
      if (out.body.size() + n > (64u << 20)) return false;  // an error page has no business being this long
      out.body.append(data, n);
      return true;
    };
    auto res = client.send(req);
    if (!res) {
      out.status = 0;
      out.error = httplib::to_string(res.error());
      if (res.error() == httplib::Error::Read) out.error = "the connection dropped or timed out while reading";
      if (res.error() == httplib::Error::Connection) out.error = "could not connect to " + base.origin();
      if (res.error() == httplib::Error::ConnectionTimeout) out.error = "timed out connecting to " + base.origin();
      if (res.error() == httplib::Error::SSLServerVerification)
        out.error = "the server's TLS certificate did not verify against the trusted CAs (the system's; "
                    "SSL_CERT_FILE or SSL_CERT_DIR name others)";
      if (res.error() == httplib::Error::SSLConnection) out.error = "the TLS handshake with " + base.origin() + " failed";
      return out;
    }
    out.status = res->status;
    return out;
  }
};

HttpClient::HttpClient(const Url& base, HttpOptions options) : impl_(std::make_unique<Impl>(base, options)) {}
HttpClient::~HttpClient() = default;

HttpResponse HttpClient::post(std::string_view path, const std::string& body, std::string_view content_type,
                              const Headers& headers, const BodyFn& on_body) {
  httplib::Request req;
  req.method = "POST";
  req.path = impl_->base.base_path + std::string(path);
  req.body = body;
  req.headers.emplace("Content-Type", std::string(content_type));
  return impl_->send(req, headers, on_body);
}

HttpResponse HttpClient::get(std::string_view path, const Headers& headers) {
  httplib::Request req;
  req.method = "GET";
  req.path = impl_->base.base_path + std::string(path);
  return impl_->send(req, headers, {});
}

void HttpClient::stop() { impl_->client.stop(); }

std::string HttpRequest::header(std::string_view name) const {
  auto lower = [](std::string_view x) {
    std::string out(x);
    for (auto& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
    return out;
  };
  const auto want = lower(name);
  for (const auto& [k, v] : headers)
    if (lower(k) == want) return v;
  return "";
}

std::optional<std::string> HttpRequest::param(std::string_view name) const {
  for (const auto& [k, v] : params)
    if (k == name) return v;
  return std::nullopt;
}

struct HttpServer::Impl {
  ServerOptions opt;
  httplib::Server server;
  int listen_fd = -1;  // the listening socket, seen as httplib creates it

  // httplib listens with a backlog of 5: connections arriving faster than one accept loop turn had their SYNs
  // dropped and retried a second or more later (1,000 connections at once took minutes). Listening again on the
  // bound socket sets the kernel's largest backlog.
  void widen_backlog() const {
    if (listen_fd >= 0) ::listen(listen_fd, SOMAXCONN);
  }

  std::string error_json(int status, const std::string& message) const {
    if (opt.error_body) return opt.error_body(status, message);
    return nlohmann::json{{"error", {{"message", message}}}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }

  void answer(const httplib::Request& req, httplib::Response& res, const HttpHandler& h) const {
    HttpRequest r;
    r.method = req.method;
    r.path = req.path;
    r.body = req.body;
    for (const auto& [k, v] : req.headers) r.headers.emplace_back(k, v);
    for (const auto& [k, v] : req.params) r.params.emplace_back(k, v);
    for (std::size_t i = 1; i < req.matches.size(); ++i) r.matches.push_back(req.matches[i].str());
    HttpReply reply = h(r);
    res.status = reply.status;
    for (const auto& [k, v] : reply.headers) res.set_header(k.c_str(), v);
    if (!reply.stream) {
      res.set_content(reply.body, reply.content_type.c_str());
      return;
    }
    auto stream = std::make_shared<decltype(reply.stream)>(std::move(reply.stream));
    res.set_chunked_content_provider(reply.content_type, [stream](std::size_t, httplib::DataSink& sink) {
      // httplib calls this outside its handler's try: an escaping exception would end the process.
      try {
        (*stream)([&](std::string_view bytes) { return bytes.empty() || sink.write(bytes.data(), bytes.size()); });
      } catch (...) {
        return false;  // the connection is closed mid-stream
      }
      sink.done();
      return true;
    });
  }
};

HttpServer::HttpServer(ServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->opt = std::move(options);
  auto& sv = impl_->server;
  const auto threads = impl_->opt.threads;
  sv.new_task_queue = [threads] { return new ConnectionThreads(threads); };
  sv.set_payload_max_length(impl_->opt.max_body_bytes);
  auto [rs, ru] = sec_usec(impl_->opt.read_timeout_s);
  auto [ws, wu] = sec_usec(impl_->opt.write_timeout_s);
  sv.set_read_timeout(rs, ru);
  sv.set_write_timeout(ws, wu);
  sv.set_keep_alive_timeout(2);  // an idle keep-alive connection holds a thread, and delays a shutdown this long
  sv.set_socket_options([self = impl_.get()](socket_t sock) {  // httplib's options, and the socket for widen_backlog
    httplib::default_socket_options(sock);
    self->listen_fd = int(sock);
  });
  Impl* self = impl_.get();
  sv.set_error_handler([self](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string message = res.status == 404 ? "no route for " + req.method + " " + req.path
                        : res.status == 413 ? "the request body is larger than " + std::to_string(self->opt.max_body_bytes) + " bytes"
                        : "HTTP " + std::to_string(res.status);
    res.set_content(self->error_json(res.status, message), "application/json");
  });
  sv.set_exception_handler([self](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string message = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      message = std::string("internal error: ") + e.what();
    } catch (...) {
    }
    res.status = 500;
    res.set_content(self->error_json(500, message), "application/json");
  });
}

HttpServer::~HttpServer() = default;

void HttpServer::route(const std::string& method, const std::string& path, HttpHandler handler) {
  Impl* self = impl_.get();
  auto fn = [self, h = std::move(handler)](const httplib::Request& req, httplib::Response& res) { self->answer(req, res, h); };
  if (method == "GET") impl_->server.Get(path, fn);
  else if (method == "POST") impl_->server.Post(path, fn);
  else throw std::logic_error("HttpServer::route: GET or POST only");
}

int HttpServer::bind(const std::string& host, int port) {
  raise_open_file_limit();
  if (port == 0) {
    const int p = impl_->server.bind_to_any_port(host);
    if (p <= 0) throw RuntimeFailure("could not bind " + host + " to a free port");
    impl_->widen_backlog();
    return p;
  }
  if (!impl_->server.bind_to_port(host, port))
    throw RuntimeFailure("could not bind " + host + ":" + std::to_string(port) + " (in use, or not an address here)");
  impl_->widen_backlog();
  return port;
}

void HttpServer::serve() { impl_->server.listen_after_bind(); }
void HttpServer::stop() { impl_->server.stop(); }

}  // namespace distill::net
