"""A local OpenAI-compatible server for the tests: ``POST /v1/chat/completions`` over real HTTP.

It explains every neuron as "tokens with the digit 7" and simulates by marking tokens containing
"7" as firing, with log-probabilities in the OpenAI schema (``choices[0].logprobs.content[i]
.top_logprobs``). Tests script failures: a queue of one-shot actions (``"429"``, ``"500"``,
``"401"``, ``"404"``, ``"hang"``, ``"malformed"``) consumed by the next requests, and standing behaviours (ignore or
refuse log-probabilities, a word whose prompts always get a malformed reply).
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
        if "7" in token:
            out.append((int(index), 10, {"10": math.log(0.8), "9": math.log(0.2)}))
        else:
            out.append((int(index), 0, {"0": math.log(0.9), "1": math.log(0.1), " x": -9.0}))
    return out


class FakeOpenAI:
    def __init__(self) -> None:
        self.actions: deque[str] = deque()
        self.explanations: deque[str] = deque()  # scripted explanation replies, then EXPLANATION
        self.ignore_logprobs = False
        self.refuse_logprobs = False
        self.poison = "POISON"
        self.hang_s = 2.0
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0

    def count(self, kind: str) -> int:
        return sum(1 for r in self.requests if r["kind"] == kind)

    # -- replies ---------------------------------------------------------------------------------

    def reply(self, request: dict) -> tuple[int, bytes, dict[str, str]]:
        messages = request["messages"]
        last = messages[-1]["content"]
        kind = "explain" if "Explanation of neuron" in last else "simulate"
        with self.lock:
            self.requests.append({"kind": kind, "model": request["model"]})
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
            if not re.fullmatch(r"/v1/chat/completions", self.path):
                self.send_error(404)
                return
            length = int(self.headers.get("content-length", 0))
            request = json.loads(self.rfile.read(length))
            with fake.lock:
                fake.in_flight += 1
                fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
            try:
                status, body, headers = fake.reply(request)
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
