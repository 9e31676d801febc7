"""A small client for OpenAI-compatible completions: bounded, retried, budgeted and cached.

Works with OpenAI itself or any server speaking its chat-completions API (vLLM, llama.cpp,
Ollama), and with the legacy completions API where a server echoes prompt log-probabilities
(`ChatClient.prompt_logprobs`, for the all-at-once simulator). What it adds over the `openai`
package:

- **bounded concurrency**: at most `concurrency` requests in flight, whatever the caller's threads;
- **retries with backoff** on 429, 5xx, timeouts and dropped connections (honouring a short
  ``Retry-After``), and no retry for other 4xx, which will not get better;
- **log-probabilities when available**: if the endpoint rejects ``logprobs``/``top_logprobs``
  with a 400, the request is repeated once without them and later requests skip them;
- **prompt log-probabilities when available**: `echoes_prompt_logprobs` asks once per model;
  a refusal or a reply without them means the chat simulator is used instead;
- **a token budget** (`Budget`), checked by callers before they start a neuron;
- **a persistent cache** (`ReplyCache`, JSON lines) so the same question is never asked twice.

The API key comes from ``DEEPDECIPHER_EXPLAINER_API_KEY`` or ``OPENAI_API_KEY`` and is only handed
to the `openai` client: it is never logged, cached or part of a repr.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import openai

from dd_assets.methods.explain.simulate import TokenLogprob

log = logging.getLogger(__name__)

RETRYABLE_STATUS = {408, 409, 429}
SIMULATORS = ("auto", "chat")
ECHO_PROBE = "Activations:\na\t0\nb\t1\n"
T = TypeVar("T")


class ReplyError(RuntimeError):
    """A request failed for good (retries exhausted, refused, or an unusable reply)."""


@dataclass(frozen=True)
class ClientConfig:
    base_url: str
    explainer_model: str
    simulator_model: str
    concurrency: int = 4
    max_retries: int = 4
    timeout_s: float = 60.0
    backoff_s: float = 1.0
    """First retry waits about this long; each further retry doubles it (with jitter)."""
    max_backoff_s: float = 30.0
    top_logprobs: int = 15
    simulator: str = "auto"
    """``auto``: the all-at-once simulator where the endpoint echoes prompt log-probabilities,
    else the chat simulator; ``chat``: always the chat simulator."""

    def __post_init__(self) -> None:
        if not self.base_url:
            raise ValueError("an LLM explainer needs a base_url")
        if self.concurrency < 1 or self.max_retries < 0 or self.timeout_s <= 0:
            raise ValueError(f"bad client settings: {self}")
        if not 0 <= self.top_logprobs <= 20:
            raise ValueError(f"top_logprobs must be 0..20, got {self.top_logprobs}")
        if self.simulator not in SIMULATORS:
            raise ValueError(f"simulator must be one of {SIMULATORS}, got {self.simulator!r}")


def api_key_from_env() -> str:
    """The endpoint's key; local servers usually need none, but the client wants a string."""
    return (
        os.environ.get("DEEPDECIPHER_EXPLAINER_API_KEY")
        or os.environ.get("OPENAI_API_KEY")
        or "no-key"
    )


@dataclass(frozen=True)
class ChatReply:
    text: str
    logprobs: list[TokenLogprob] | None
    tokens_used: int


@dataclass(frozen=True)
class EchoReply:
    """An echoed prompt: its tokens, the top alternatives at each (None where the endpoint gives
    none, e.g. the first token) and, where given, each token's character offset in the prompt."""

    tokens: list[str]
    top_logprobs: list[dict[str, float] | None]
    text_offset: list[int] | None
    tokens_used: int


def _echo_reply(response) -> EchoReply:
    choices = getattr(response, "choices", None)
    if not choices:
        raise ValueError("reply has no choices")
    lp = choices[0].logprobs
    if lp is None or not lp.tokens or lp.top_logprobs is None:
        raise ValueError("reply has no prompt log-probabilities")
    usage = getattr(response, "usage", None)
    return EchoReply(
        tokens=list(lp.tokens),
        top_logprobs=[dict(top) if top else None for top in lp.top_logprobs],
        text_offset=None if lp.text_offset is None else list(lp.text_offset),
        tokens_used=int(getattr(usage, "total_tokens", 0) or 0),
    )


@dataclass
class Budget:
    """Tokens (prompt + completion, as reported) allowed for one run; None = unlimited."""

    max_tokens: int | None = None
    used: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, tokens: int) -> None:
        with self._lock:
            self.used += int(tokens)

    @property
    def exhausted(self) -> bool:
        return self.max_tokens is not None and self.used >= self.max_tokens


class ReplyCache:
    """A JSON-lines file of key -> value, loaded once and appended to; thread-safe.

    Keys are lists of strings/ints (e.g. model, layer, neuron, prompt version, explainer model).
    A truncated last line (a killed writer) is skipped on load.
    """

    def __init__(self, path: str | Path | None) -> None:
        self.path = None if path is None else Path(path)
        self._lock = threading.Lock()
        self._entries: dict[str, object] = {}
        if self.path is not None and self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    self._entries[json.dumps(entry["key"])] = entry["value"]
                except (ValueError, KeyError, TypeError):
                    log.warning("skipping an unreadable line of %s", self.path)

    def get(self, key: list) -> object | None:
        with self._lock:
            return self._entries.get(json.dumps(key))

    def put(self, key: list, value: object) -> None:
        line = json.dumps({"key": key, "value": value}, ensure_ascii=False)
        with self._lock:
            self._entries[json.dumps(key)] = value
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as f:
                    f.write(line + "\n")

    def __len__(self) -> int:
        return len(self._entries)


def _retry_after(exc: openai.APIStatusError) -> float | None:
    try:
        value = exc.response.headers.get("retry-after")
        return None if value is None else float(value)
    except (ValueError, AttributeError):
        return None


class ChatClient:
    """Chat completions over one OpenAI-compatible endpoint; safe to share between threads."""

    def __init__(self, config: ClientConfig, api_key: str | None = None) -> None:
        self.config = config
        self._client = openai.OpenAI(
            base_url=config.base_url,
            api_key=api_key or api_key_from_env(),
            max_retries=0,  # retried here, with our own policy and logging
            timeout=config.timeout_s,
        )
        self._slots = threading.BoundedSemaphore(config.concurrency)
        self.logprobs_supported = True
        self._echoes: dict[str, bool] = {}  # model -> echoes prompt log-probabilities
        self._probe_lock = threading.Lock()
        self.requests = 0
        self.retries = 0
        self._count_lock = threading.Lock()

    def __repr__(self) -> str:  # never show the key
        return f"ChatClient(base_url={self.config.base_url!r})"

    def _count(self, retried: bool = False) -> None:
        with self._count_lock:
            self.requests += 1
            self.retries += int(retried)

    def _wait(self, attempt: int, suggested: float | None) -> None:
        base = self.config.backoff_s * 2**attempt
        wait = min(self.config.max_backoff_s, suggested if suggested is not None else base)
        time.sleep(wait * (1 + 0.25 * random.random()))

    def complete(
        self, messages: list[dict[str, str]], model: str, max_tokens: int, logprobs: bool = False,
        temperature: float = 0.0, stop: list[str] | None = None,
    ) -> ChatReply:  # fmt: skip
        """One chat completion, retried on transient errors; raises ReplyError when it gives up.
        `stop`: strings at which the endpoint stops generating (at most 4)."""
        want_logprobs = logprobs and self.logprobs_supported and self.config.top_logprobs > 0
        kwargs: dict = {
            "model": model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        if stop:
            kwargs["stop"] = stop
        if want_logprobs:
            try:
                return self._retried(
                    lambda: self._client.chat.completions.create(
                        **kwargs, logprobs=True, top_logprobs=self.config.top_logprobs
                    ),
                    lambda response: self._reply(response, True),
                )
            except openai.BadRequestError as exc:
                log.warning("endpoint refused log-probabilities (%s); sampling instead", exc)
                self.logprobs_supported = False
        try:
            return self._retried(
                lambda: self._client.chat.completions.create(**kwargs),
                lambda response: self._reply(response, False),
            )
        except openai.BadRequestError as exc:
            raise ReplyError(f"request refused: HTTP {exc.status_code}") from exc

    def prompt_logprobs(self, prompt: str, model: str, max_retries: int | None = None) -> EchoReply:
        """The prompt echoed with the top log-probabilities at each of its tokens, nothing
        generated (completions API: ``echo=True, logprobs=k, max_tokens=0``)."""
        try:
            return self._retried(
                lambda: self._client.completions.create(
                    model=model,
                    prompt=prompt,
                    max_tokens=0,
                    echo=True,
                    temperature=0.0,
                    logprobs=self.config.top_logprobs,
                ),  # fmt: skip
                _echo_reply,
                self.config.max_retries if max_retries is None else max_retries,
            )
        except openai.BadRequestError as exc:
            raise ReplyError(f"request refused: HTTP {exc.status_code}") from exc

    def echoes_prompt_logprobs(self, model: str) -> bool:
        """Whether `model` at this endpoint echoes prompt log-probabilities (the all-at-once
        simulator needs them). Probed once, with one short request and no retry: a refusal or a
        reply without them (llama.cpp's server ignores ``echo`` and generates a token) means no."""
        with self._probe_lock:
            if model not in self._echoes:
                try:
                    reply = self.prompt_logprobs(ECHO_PROBE, model, max_retries=0)
                    found = sum(bool(top) for top in reply.top_logprobs) >= 2
                    why = "" if found else "the reply has no prompt log-probabilities"
                except ReplyError as exc:
                    found, why = False, str(exc)
                self._echoes[model] = found
                if found:
                    log.info("%s echoes prompt log-probabilities: all-at-once simulator", model)
                else:
                    log.info("%s gives no prompt log-probabilities (%s)", model, why)
            return self._echoes[model]

    def _retried(self, send: Callable[[], object], parse: Callable[[object], T],
                 max_retries: int | None = None) -> T:  # fmt: skip
        """`parse(send())`, retried with backoff on 429, 5xx, timeouts, dropped connections and
        unparseable replies; raises ReplyError when it gives up, and lets a 400 through (the
        caller knows whether dropping an option may help)."""
        retries = self.config.max_retries if max_retries is None else max_retries
        attempt = 0
        while True:
            try:
                with self._slots:
                    self._count(retried=attempt > 0)
                    response = send()
                return parse(response)
            except openai.BadRequestError:
                raise
            except openai.APIStatusError as exc:
                status = exc.status_code
                if not (status in RETRYABLE_STATUS or status >= 500):
                    raise ReplyError(f"request refused: HTTP {status}") from exc
                reason, suggested = f"HTTP {status}", _retry_after(exc)
            except openai.APITimeoutError:
                reason, suggested = "timeout", None
            except openai.APIConnectionError as exc:
                reason, suggested = f"connection error ({type(exc.__cause__).__name__})", None
            except (openai.APIResponseValidationError, ValueError, TypeError) as exc:
                # A reply that is not the JSON we asked for: retrying the same request may help.
                reason, suggested = f"malformed reply ({type(exc).__name__})", None
            if attempt >= retries:
                raise ReplyError(f"{reason}, after {attempt + 1} attempts")
            log.info("%s from %s; retry %d", reason, self.config.base_url, attempt + 1)
            self._wait(attempt, suggested)
            attempt += 1

    def _reply(self, response, want_logprobs: bool) -> ChatReply:
        choices = getattr(response, "choices", None)
        if not choices:
            raise ValueError("reply has no choices")
        choice = choices[0]
        text = choice.message.content if choice.message is not None else None
        if not isinstance(text, str):
            raise ValueError("reply has no message content")
        usage = getattr(response, "usage", None)
        used = int(getattr(usage, "total_tokens", 0) or 0)
        tokens = None
        content = getattr(choice.logprobs, "content", None) if want_logprobs else None
        if content:
            tokens = [
                TokenLogprob(
                    token=item.token,
                    top={alt.token: alt.logprob for alt in (item.top_logprobs or [])}
                    or {item.token: item.logprob},
                )
                for item in content
            ]
        return ChatReply(text=text, logprobs=tokens, tokens_used=used)
