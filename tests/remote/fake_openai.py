"""tests/remote/fake_openai.py: a stand-in for the OpenAI-compatible servers `distill generate --teacher URL`
drives, on 127.0.0.1, for tests. vLLM, SGLang, llama.cpp's server and DeepSeek's API cannot be reached from the
test machines, so this server answers in their shapes as their documentation gives them (reasoning_content,
logprobs with "token_id:N" tokens or with token texts, SSE chunks, the usage chunk, error bodies), and injects
faults on chosen requests: 500, 429 with Retry-After, truncated JSON, a stall, a reset mid-stream, a wrong
content type, a dropped connection, 400 and 401.

The answers are a function of the request alone (problem text and seed), so a rerun draws the same samples.
Every request is logged (time, path, body, fault) for the tests to check what the client sent.
"""
import hashlib
import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

R1_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


def problem_of(body, path):
    """The problem text a request asks about: the user turn's first part (chat) or R1 prompt (completions)."""
    if path.endswith("/chat/completions"):
        text = body["messages"][-1]["content"]
    else:
        text = body["prompt"]
        if text.startswith("User: "):
            text = text[len("User: "):]
    return text.split("\n" + R1_INSTRUCTION)[0]


class Teacher:
    """What the fake model answers. `answers` maps problem text to its gold answer: even seeds answer right, odd
    seeds wrong. style: vllm (0.16 on: "reasoning") | vllm-0.10 ("reasoning_content") | sglang ("matched_stop")
    | deepseek | llamacpp (inline think, token "id"s) | openai (token texts)."""

    def __init__(self, style="vllm", answers=None, sp_model=None):
        self.style = style
        self.answers = answers or {}
        self.sp = None
        if sp_model:
            import sentencepiece
            self.sp = sentencepiece.SentencePieceProcessor(model_file=sp_model)

    def answer(self, problem, seed):
        gold = self.answers.get(problem, "7")
        return gold if seed % 2 == 0 else gold + "1"

    def reasoning(self, problem, seed):
        return f"The problem is {problem[:40]!r}. I work it out with seed {seed}.\n"

    def tokens(self, text):
        """(token name, id) per position of `text`, and their alternatives, as this style names them."""
        if self.sp is not None:
            return [(self.surface(i), i) for i in self.sp.encode(text)]
        words = text.replace("\n", " \n ").split(" ")
        out = []
        for w in words:
            if w == "":
                continue
            out.append((w, int(hashlib.sha256(w.encode()).hexdigest()[:6], 16) % 1000 + 10))
        return out

    def surface(self, i):
        """A token's text as OpenAI-style logprobs show it: a byte piece as its character, '\u2581' as a space."""
        piece = self.sp.id_to_piece(i)
        if len(piece) == 6 and piece.startswith("<0x") and int(piece[3:5], 16) < 0x80:
            return chr(int(piece[3:5], 16))
        return piece.replace("\u2581", " ")

    def alternatives(self, tok_id, k):
        """k-1 other (name, id) after the chosen one: ids that are plain pieces when a tokenizer is loaded."""
        out, cand = [], tok_id
        while len(out) < k - 1:
            cand += 1
            if self.sp is not None:
                cand %= self.sp.get_piece_size()
                piece = self.sp.id_to_piece(cand)
                if cand == tok_id or piece.startswith("<") or not piece.replace("\u2581", ""):
                    continue
                out.append((self.surface(cand), cand))
            else:
                out.append((f"alt{cand}", cand))
        return out


def logprob_entries(teacher, text, k, chat, token_ids):
    """The logprobs block of a choice: chat's content list or completions' parallel lists."""
    toks = teacher.tokens(text)
    name = (lambda t, i: f"token_id:{i}") if token_ids else (lambda t, i: t)
    if chat:
        content = []
        for j, (t, i) in enumerate(toks):
            chosen = {"token": name(t, i), "logprob": -0.25 - 0.001 * j, "bytes": list(t.encode())}
            top = [dict(chosen)] + [{"token": name(at, ai), "logprob": -3.0 - m, "bytes": list(at.encode())}
                                    for m, (at, ai) in enumerate(teacher.alternatives(i, k))]
            if teacher.style == "llamacpp":
                chosen["id"] = i
                for e, (_, ai) in zip(top[1:], teacher.alternatives(i, k)):
                    e["id"] = ai
            chosen["top_logprobs"] = top[:k]
            content.append(chosen)
        return {"content": content}
    tokens, token_logprobs, tops, offsets, off = [], [], [], [], 0
    for j, (t, i) in enumerate(toks):
        tokens.append(name(t, i))
        token_logprobs.append(-0.25 - 0.001 * j)
        d = {name(t, i): -0.25 - 0.001 * j}
        for m, (at, ai) in enumerate(teacher.alternatives(i, k)):
            d[name(at, ai)] = -3.0 - m
        tops.append(d)
        offsets.append(off)
        off += len(t)
    return {"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": tops, "text_offset": offsets}


def make_response(teacher, body, path, model_name):
    """(whole response dict, list of stream chunk dicts) for a request."""
    chat = path.endswith("/chat/completions")
    problem = problem_of(body, path)
    seed = int(body.get("seed", 0))
    answer = teacher.answer(problem, seed)
    reasoning = teacher.reasoning(problem, seed)
    content = f"\n\nThe answer is \\boxed{{{answer}}}."
    split = chat and teacher.style in ("vllm", "vllm-0.10", "sglang", "deepseek")
    reasoning_key = "reasoning" if teacher.style == "vllm" else "reasoning_content"
    stop_key = {"vllm": "stop_reason", "vllm-0.10": "stop_reason", "sglang": "matched_stop"}.get(teacher.style)
    if teacher.style == "llamacpp" or not chat:
        text = reasoning + "</think>" + content  # the template opened the think block; it is closed inline
    else:
        text = content if split else "<think>\n" + reasoning + "</think>" + content
    whole_output = (reasoning + "</think>" + content) if split else text
    toks = teacher.tokens(whole_output)
    max_tokens = int(body.get("max_tokens", 16))
    finish, stop_reason = "stop", None
    stops = body.get("stop") or []
    if isinstance(stops, str):
        stops = [stops]
    for s in stops:
        if s and s in content:
            content = content[:content.index(s)]
            text = (content if split else text[:text.index(s)])
            finish, stop_reason = "stop", s
            break
    if len(toks) > max_tokens:
        finish = "length"
    k = 0
    if body.get("logprobs"):
        k = int(body.get("top_logprobs", 0)) if chat else int(body["logprobs"])
    token_ids = bool(body.get("return_tokens_as_token_ids")) and teacher.style in ("vllm", "vllm-0.10")
    lp = logprob_entries(teacher, whole_output, k, chat, token_ids) if k else None
    usage = {"prompt_tokens": 31, "completion_tokens": len(toks), "total_tokens": 31 + len(toks)}
    if teacher.style == "deepseek":
        usage["completion_tokens_details"] = {"reasoning_tokens": len(teacher.tokens(reasoning))}
        usage["prompt_cache_hit_tokens"] = 0
        usage["prompt_cache_miss_tokens"] = 31
    rid = "cmpl-" + hashlib.sha256(f"{problem}|{seed}".encode()).hexdigest()[:12]
    base = {"id": rid, "created": 1765000000, "model": model_name,
            "system_fingerprint": "fp_fake_" + teacher.style}
    if chat:
        msg = {"role": "assistant", "content": text}
        if split:
            msg[reasoning_key] = reasoning
        choice = {"index": 0, "message": msg, "finish_reason": finish}
    else:
        choice = {"index": 0, "text": text, "finish_reason": finish}
    if lp is not None:
        choice["logprobs"] = lp
    if stop_key:
        choice[stop_key] = stop_reason
    whole = dict(base, object="chat.completion" if chat else "text_completion", choices=[choice], usage=usage)

    # Streamed: a role chunk, the reasoning and content a few characters at a time (logprobs beside the content
    # pieces that carry them), the finish chunk, then the usage chunk with no choices.
    obj = "chat.completion.chunk" if chat else "text_completion"
    chunks = []
    def chunk(delta=None, finish_reason=None, logprobs=None, text_piece=None):
        c = {"index": 0, "finish_reason": finish_reason}
        if chat:
            c["delta"] = delta or {}
        else:
            c["text"] = text_piece or ""
        if logprobs is not None:
            c["logprobs"] = logprobs
        if finish_reason and stop_key:
            c[stop_key] = stop_reason
        return dict(base, object=obj, choices=[c])
    if chat:
        chunks.append(chunk({"role": "assistant", "content": ""}))
    pieces = []
    if split:
        pieces += [(reasoning_key, reasoning[i:i + 7]) for i in range(0, len(reasoning), 7)]
    pieces += [("content", text[i:i + 7]) for i in range(0, len(text), 7)]
    for j, (field, piece) in enumerate(pieces):
        if chat:
            chunks.append(chunk({field: piece}))
        else:
            chunks.append(chunk(text_piece=piece))
    if lp is not None:  # all logprobs on one extra chunk with empty text: the accumulator joins them in order
        if chat:
            chunks.append(chunk({"content": ""}, logprobs=lp))
        else:
            chunks.append(chunk(text_piece="", logprobs=lp))
    chunks.append(chunk({} if chat else None, finish_reason=finish))
    chunks.append(dict(base, object=obj, choices=[], usage=usage))
    return whole, chunks


class FakeServer:
    """The server. faults: {request number (1-based, counting completions requests): fault name}."""

    def __init__(self, teacher, models=("teacher",), key=None, faults=None, delay=0.0, stall=3.0, tls=None):
        self.teacher, self.models, self.key = teacher, list(models), key
        self.faults = dict(faults or {})
        self.delay, self.stall = delay, stall
        self.log, self.count, self.lock = [], 0, threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def send_json(self, status, obj, headers=()):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def error(self, status, message, typ, headers=()):
                self.send_json(status, {"error": {"message": message, "type": typ, "param": None, "code": None}},
                               headers)

            def authorized(self):
                if owner.key is None:
                    return True
                if self.headers.get("Authorization") == "Bearer " + owner.key:
                    return True
                self.error(401, "Incorrect API key provided.", "invalid_request_error")
                return False

            def do_GET(self):
                if not self.authorized():
                    return
                if self.path == "/v1/models":
                    self.send_json(200, {"object": "list", "data": [
                        {"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in owner.models]})
                else:
                    self.error(404, "not found", "not_found")

            def reset(self):
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(n)
                with owner.lock:
                    owner.count += 1
                    fault = owner.faults.get(owner.count)
                    body = json.loads(raw)
                    owner.log.append({"t": time.monotonic(), "path": self.path, "body": body, "fault": fault,
                                      "auth": self.headers.get("Authorization")})
                if not self.authorized():
                    return
                if body.get("model") not in owner.models:
                    return self.error(404, f"The model `{body.get('model')}` does not exist.", "NotFoundError")
                if owner.delay:
                    time.sleep(owner.delay)
                if fault == "500":
                    return self.error(500, "internal error", "server_error")
                if fault == "429":
                    return self.error(429, "Rate limit reached", "rate_limit_error", [("Retry-After", "1")])
                if fault == "400":
                    return self.error(400, "This model's maximum context length is 64 tokens.",
                                      "invalid_request_error")
                if fault == "401":
                    return self.error(401, "Incorrect API key provided.", "invalid_request_error")
                if fault == "402":
                    return self.error(402, "Insufficient Balance", "unknown_error")
                if fault == "drop":
                    return self.reset()
                if fault == "stall":
                    time.sleep(owner.stall)
                    return self.reset()
                whole, chunks = make_response(owner.teacher, body, self.path, body["model"])
                if fault == "content_type":
                    data = b"<html><body>502 Bad Gateway</body></html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                if not body.get("stream") or fault == "json_for_stream":  # some servers ignore `stream`
                    data = json.dumps(whole).encode()
                    if fault == "truncated":
                        data = data[: len(data) // 2]
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()

                def emit(s):
                    data = s.encode()
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    self.wfile.flush()

                events = [f"data: {json.dumps(c)}\n\n" for c in chunks] + ["data: [DONE]\n\n"]
                if fault == "truncated":  # a chunk cut in half, then a clean end of the stream
                    events = events[:2] + [events[2][: len(events[2]) // 2] + "\n\n"]
                for j, ev in enumerate(events):
                    if fault == "reset" and j == len(events) // 2:
                        return self.reset()
                    if j == 1:
                        emit(": keep-alive\n\n")  # a comment line, as proxies send
                    emit(ev)
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a client that hung up (the tests cancel and time out on purpose)

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.scheme = "http"
        if tls:  # (certfile, keyfile): HTTPS
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, userinfo=""):
        return f"{self.scheme}://{userinfo}127.0.0.1:{self.port}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def completions_log(self):
        return [e for e in self.log if e["path"] != "/v1/models"]
