"""The models the service holds: loaded on first use, in a background thread, at most N at once.

A request for a model that is not in memory starts loading it and is answered 503 ("loading",
Retry-After) right away, so no request waits minutes on a load. Loading another model past the
bound evicts the least recently used one first (its memory is freed before the next one loads).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from dd_assets.models import boot_bridge, default_device, model_shape
from dd_assets.registry import ModelSpec, Registry, load_registry
from dd_infer.errors import NotFound, Unavailable
from dd_infer.settings import InferSettings

log = logging.getLogger(__name__)

LOAD_RETRY_SECONDS = 30
"""After a failed load, requests get the failure for this long before a new attempt."""


@dataclass
class LiveModel:
    """A loaded model and what requests need from it."""

    spec: ModelSpec
    bridge: object
    n_layers: int
    d_mlp: int
    n_ctx: int
    bos_id: int
    _strings: dict[int, str] = field(default_factory=dict)

    @classmethod
    def from_bridge(cls, spec: ModelSpec, bridge) -> LiveModel:
        shape = model_shape(bridge)
        n_ctx = int(getattr(bridge.cfg, "n_ctx", 0) or 0) or spec.context_length
        return cls(spec, bridge, shape.n_layers, shape.d_mlp, n_ctx, shape.bos_id)

    def encode(self, text: str) -> list[int]:
        """BOS, then the text's tokens: the layout of the scanned documents."""
        return [self.bos_id, *self.bridge.tokenizer.encode(text, add_special_tokens=False)]

    def token_strings(self, ids: list[int]) -> list[str]:
        """Display strings, decoded one id at a time as in `dataset_tokens`."""
        out = []
        for i in ids:
            s = self._strings.get(i)
            if s is None:
                s = self._strings[i] = self.bridge.tokenizer.decode([i])
            out.append(s)
        return out


class ModelPool:
    def __init__(self, settings: InferSettings) -> None:
        self.settings = settings
        self.device = settings.device or default_device()
        self._models: OrderedDict[str, LiveModel] = OrderedDict()
        self._loading: set[str] = set()
        self._failed: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._registry: tuple[float, Registry] | None = None

    def spec(self, name: str) -> ModelSpec:
        path = Path(self.settings.registry)
        mtime = path.stat().st_mtime
        if self._registry is None or self._registry[0] != mtime:
            self._registry = (mtime, load_registry(path))
        spec = self._registry[1].get(name)
        if spec is None:
            raise NotFound(f"model {name!r} is not in the registry")
        return spec

    def get(self, name: str) -> LiveModel:
        """The loaded model, or Unavailable while it loads (the first call starts the load)."""
        spec = self.spec(name)
        with self._lock:
            live = self._models.get(name)
            if live is not None and live.spec == spec:
                self._models.move_to_end(name)
                return live
            failed = self._failed.get(name)
            if failed is not None and time.monotonic() - failed[1] < LOAD_RETRY_SECONDS:
                raise Unavailable(f"model {name!r} failed to load: {failed[0]}", LOAD_RETRY_SECONDS)
            if name not in self._loading:
                self._loading.add(name)
                self._models.pop(name, None)  # a changed registry entry is reloaded
                while len(self._models) >= self.settings.max_models:
                    evicted, _ = self._models.popitem(last=False)
                    log.info("evicting model %s to make room for %s", evicted, name)
                threading.Thread(target=self._load, args=(spec,), daemon=True).start()
        raise Unavailable(f"model {name!r} is loading on {self.device}; retry shortly", 2)

    def _load(self, spec: ModelSpec) -> None:
        try:
            live = LiveModel.from_bridge(spec, boot_bridge(spec, self.device))
        except Exception as exc:  # any loader failure is reported to the requests that follow
            log.exception("loading model %s failed", spec.name)
            with self._lock:
                self._failed[spec.name] = (f"{type(exc).__name__}: {exc}", time.monotonic())
                self._loading.discard(spec.name)
            return
        with self._lock:
            self._models[spec.name] = live
            self._failed.pop(spec.name, None)
            self._loading.discard(spec.name)

    def status(self) -> dict:
        with self._lock:
            return {
                "device": self.device,
                "loaded": list(self._models),
                "loading": sorted(self._loading),
                "max_models": self.settings.max_models,
            }
