"""A local OpenAI-compatible server for the tests: ``POST /v1/chat/completions`` over real HTTP.

It explains every neuron as "tokens with the digit 7" and simulates by marking tokens containing
"7" as firing, with log-probabilities in the OpenAI schema (``choices[0].logprobs.content[i]
.top_logprobs``). Tests script failures: a queue of one-shot actions (``"429"``, ``"500"``,
``"401"``, ``"404"``, ``"hang"``, ``"malformed"``) consumed by the next requests, and standing
behaviours (ignore or refuse log-probabilities, a word whose prompts always get a malformed reply).

``POST /v1/completions`` with ``echo`` answers the all-at-once simulator: the prompt split into
tokens (line text, tabs, newlines), each with top log-probabilities; at every value position of
the prompt's last ``Activations:`` block they favour 10 where the line's token holds a "7", else
0. By default it refuses ``echo`` (HTTP 500, as older llama.cpp servers did); tests set
``fake.echo = "ok"``, or ``"ignore"``: one generated token with chat-style log-probabilities and
no prompt, as llama.cpp's server (b11434) answers.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import deque
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EXPLANATION = "tokens with the digit 7"


def _simulate(prompt: str) -> list[tuple[int, int, dict[str, float]]]:
    """(index, sampled value, top log-probs) per numbered token of a simulation prompt."""
    body = prompt.split("Tokens:\n", 1)[1].split("\nActivations for tokens", 1)[0]
    out = []
    for line in body.splitlines():
        index, token = line.split("\t", 1)
        fires = "7" in token
        out.append((int(index), 10 if fires else 0, _simulate_value(fires)))
    return out


def _simulate_value(fires: bool) -> dict[str, float]:
    """Top log-probabilities of a value: mostly 10 where the token fires, mostly 0 elsewhere."""
    if fires:
        return {"10": math.log(0.8), "9": math.log(0.2)}
    return {"0": math.log(0.9), "1": math.log(0.1), " x": -9.0}


class FakeOpenAI:
    def __init__(self) -> None:
        self.actions: deque[str] = deque()
        self.explanations: deque[str] = deque()  # scripted explanation replies, then EXPLANATION
        self.ignore_logprobs = False
        self.refuse_logprobs = False
        self.poison = "POISON"
        self.hang_s = 2.0
        self.echo = "refuse"  # "ok" | "refuse" | "ignore"
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0

    def count(self, kind: str) -> int:
        return sum(1 for r in self.requests if r["kind"] == kind)

    # -- replies ---------------------------------------------------------------------------------

    def echo_reply(self, request: dict) -> tuple[int, bytes, dict[str, str]]:
        """A legacy completion with ``echo``: the prompt's tokens and their log-probabilities."""
        with self.lock:
            self.requests.append({"kind": "echo", "model": request["model"]})
            action = self.actions.popleft() if self.actions else "ok"
        if action in ("429", "500"):
            return int(action), b'{"error": {"message": "no"}}', {"retry-after": "0"}
        if self.echo == "refuse" and request.get("echo"):
            return 500, b'{"error": {"code": 500, "message": "Only no echo is supported"}}', {}
        prompt = request["prompt"]
        tokens = re.findall(r"[\t\n]|[^\t\n]+", prompt)
        target = len(re.findall(r"[\t\n]|[^\t\n]+", prompt.rsplit("Activations:", 1)[0]))
        tops: list[dict[str, float] | None] = [None]
        for i in range(1, len(tokens)):
            if i > target and tokens[i - 1] == "\t":
                tops.append(_simulate_value("7" in tokens[i - 2]))
            else:
                tops.append({tokens[i]: 0.0})
        offsets = [sum(len(t) for t in tokens[:i]) for i in range(len(tokens))]
        logprobs = {
            "tokens": tokens,
            "token_logprobs": [None if t is None else max(t.values()) for t in tops],
            "top_logprobs": tops,
            "text_offset": offsets,
        }
        body = {
            "id": "cmpl-test",
            "object": "text_completion",
            "created": 0,
            "model": request["model"],
            "choices": [
                {
                    "index": 0,
                    "text": "c" if self.echo == "ignore" else prompt,
                    "logprobs": {"content": [_item("c", {"c": -0.2})]}
                    if self.echo == "ignore"
                    else logprobs,
                    "finish_reason": "length",
                }
            ],
            "usage": {"prompt_tokens": len(tokens), "completion_tokens": 0,
                      "total_tokens": len(tokens)},
        }  # fmt: skip
        return 200, json.dumps(body).encode(), {}

    def reply(self, request: dict) -> tuple[int, bytes, dict[str, str]]:
        messages = request["messages"]
        last = messages[-1]["content"]
        kind = "explain" if "Explanation of neuron" in last else "simulate"
        with self.lock:
            self.requests.append(
                {"kind": kind, "model": request["model"], "stop": request.get("stop")}
            )
            action = self.actions.popleft() if self.actions else "ok"
        if action == "429":
            return 429, b'{"error": {"message": "slow down"}}', {"retry-after": "0"}
        if action in ("401", "404", "500"):
            return int(action), b'{"error": {"message": "no"}}', {}
        if action == "hang":
            time.sleep(self.hang_s)
        if action == "malformed" or self.poison in last:
            return 200, b'{"id": "x", "choices": [{"message": {"content": "unterminated', {}
        wants = bool(request.get("logprobs"))
        if wants and self.refuse_logprobs:
            return 400, b'{"error": {"message": "logprobs not supported"}}', {}
        if kind == "explain":
            with self.lock:
                text = self.explanations.popleft() if self.explanations else EXPLANATION
            content, logprobs = f" {text}.", None
        else:
            lines = _simulate(last)
            content = "\n".join(f"{i}\t{v}" for i, v, _ in lines)
            logprobs = None
            if wants and not self.ignore_logprobs:
                items = []
                for i, v, top in lines:
                    items.append(_item(str(i), {str(i): 0.0}))
                    items.append(_item("\t", {"\t": 0.0}))
                    items.append(_item(str(v), top))
                    items.append(_item("\n", {"\n": 0.0}))
                logprobs = {"content": items[:-1]}
        body = {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 0,
            "model": request["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "logprobs": logprobs,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110},
        }
        return 200, json.dumps(body).encode(), {}


def _item(token: str, top: dict[str, float]) -> dict:
    return {
        "token": token,
        "logprob": max(top.values()),
        "bytes": list(token.encode()),
        "top_logprobs": [
            {"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top.items()
        ],
    }


def _handler(fake: FakeOpenAI):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output clean
            return

        def do_POST(self) -> None:
            if self.path not in ("/v1/chat/completions", "/v1/completions"):
                self.send_error(404)
                return
            length = int(self.headers.get("content-length", 0))
            request = json.loads(self.rfile.read(length))
            answer = fake.echo_reply if self.path == "/v1/completions" else fake.reply
            with fake.lock:
                fake.in_flight += 1
                fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
            try:
                status, body, headers = answer(request)
            finally:
                with fake.lock:
                    fake.in_flight -= 1
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

    return Handler


@contextmanager
def fake_openai_server():
    """Yields (fake, base_url) with the server listening on a free 127.0.0.1 port."""
    fake = FakeOpenAI()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
