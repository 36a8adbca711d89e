"""The model side of the local backend: run a batch of prompts that share a cached prefix.

A batch is a shared prefix (ids[:P], whose key/value states come from the prefix cache) and one
suffix per prompt. Prompts are left-padded as a whole to the longest, so every prompt's last token
sits in the last column: one column of logits answers every prompt (`logits_to_keep=1`), and
generation appends one column per step. The attention mask marks the padding and the position ids
count only real tokens. Padding never sits between a prompt's tokens: a sliding-window layer
(Gemma 3: 512 tokens) counts its window in cache slots, and a gap of pads inside the window would
push real tokens out of it (measured: 2e-4 off on a 573-token MMLU prompt). So each prompt is
computed as if it ran alone: option probabilities within 2e-6 of a plain full-prompt forward
(float32, Gemma 3 270M).

The key/value cache handed to the model is transformers' `DynamicCache` with full-length layers
(no sliding-window truncation), so a stored prefix can be cut at any token; sliding-window layers
still attend only within their window because the model builds their mask from slot indices.
"""

from __future__ import annotations

import inspect

import torch

from evalkit.backends.base import Completion, Sampling
from evalkit.backends.local.prefix import KV, PrefixCache
from evalkit.backends.local.schedule import TOP_K

DEFAULT_MAX_TOKENS = 32


class Engine:
    def __init__(self, lm, tok, prefix_bytes: int):
        from transformers import DynamicCache

        self.lm, self.tok, self.Cache = lm, tok, DynamicCache
        self.device = lm.device
        self.prefixes = PrefixCache(prefix_bytes) if prefix_bytes > 0 else None
        params = inspect.signature(lm.forward).parameters
        self.cache_arg = "cache" if "cache" in params else "past_key_values"
        eos = getattr(lm.generation_config, "eos_token_id", None)
        eos = eos if isinstance(eos, list) else [eos]
        self.eos = {int(e) for e in eos + [tok.eos_token_id] if e is not None}
        self.stats = {"computed_tokens": 0, "reused_tokens": 0, "padding_tokens": 0}
        self.disabled_reason: str | None = None
        config = getattr(lm.config, "text_config", None) or lm.config
        self.context_length: int | None = getattr(config, "max_position_embeddings", None)

    def too_long(self, prompt_tokens: int, request) -> str | None:
        """Why a request does not fit the model's context (its prompt plus what it may generate),
        or None. Past the trained positions the answer means nothing, and memory runs out."""
        new = 0 if request.options is not None else request.sampling.max_tokens or DEFAULT_MAX_TOKENS
        if not self.context_length or prompt_tokens + new <= self.context_length:
            return None
        more = f" and {new:,} more may be generated" if new else ""
        return f"the prompt is {prompt_tokens:,} tokens{more}; the model takes {self.context_length:,} in all (its context length)"

    # ------------------------------------------------------------------ the forward pass
    def forward(self, prefix: KV | None, plen: int, prompts: list[list[int]]):
        """One pass over a batch of prompts whose first `plen` ids share the states `prefix`.

        Each prompt is left-padded as a whole (pads first, then its tokens without a gap), so a
        sliding-window layer's window, counted in cache slots, covers the same tokens as when the
        prompt runs alone. A row padded by k slots takes its cached prefix shifted right by k and
        recomputes the prefix's last k tokens instead of running k pads: same cost, exact result.
        Returns (last logits [B, V], cache, mask)."""
        b, width = len(prompts), max(len(p) for p in prompts) - plen
        total, pad = plen + width, self.tok.pad_token_id or 0
        ids = torch.full((b, width), pad, dtype=torch.long)
        mask = torch.zeros((b, total), dtype=torch.long)
        for i, p in enumerate(prompts):
            shift = total - len(p)
            mask[i, shift:] = 1
            run = p[max(0, plen - shift):]
            ids[i, width - len(run):] = torch.tensor(run, dtype=torch.long)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, plen:]
        cache = self.Cache(self._shifted(prefix, plen, [total - len(p) for p in prompts])) \
            if plen and prefix is not None else self.Cache()      # (a prefix length comes with its states)
        with torch.no_grad():
            out = self.lm(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                          position_ids=positions.to(self.device), use_cache=True, logits_to_keep=1,
                          **{self.cache_arg: cache})
        real = sum(len(p) - plen for p in prompts)
        self.stats["computed_tokens"] += real
        self.stats["padding_tokens"] += b * width - real
        self.stats["reused_tokens"] += plen * b
        return out.logits[:, -1, :].float(), cache, mask.to(self.device)

    @staticmethod
    def _shifted(prefix: KV, plen: int, shifts: list[int]) -> KV:
        """The prefix states per row, [B, heads, plen, dim], row i moved right by shifts[i] slots."""
        if not any(shifts):
            return [(k.unsqueeze(0).expand(len(shifts), -1, -1, -1), v.unsqueeze(0).expand(len(shifts), -1, -1, -1))
                    for k, v in prefix]
        out = []
        for k, v in prefix:
            ks, vs = k.new_zeros((len(shifts),) + tuple(k.shape)), v.new_zeros((len(shifts),) + tuple(v.shape))
            for i, sh in enumerate(shifts):
                if sh < plen:
                    ks[i, :, sh:], vs[i, :, sh:] = k[:, :plen - sh], v[:, :plen - sh]
            out.append((ks, vs))
        return out

    def _layer_states(self, cache) -> KV | None:
        """Per layer (keys, values) [B, heads, tokens, dim], or None if the cache is not plain full-length layers."""
        layers = getattr(cache, "layers", None)
        if layers is None or any(type(layer).__name__ != "DynamicLayer" or layer.keys is None for layer in layers):
            return None
        return [(layer.keys, layer.values) for layer in layers]

    def remember(self, prompts: list[list[int]], plen: int, cache, width: int) -> None:
        """Keep each prompt's states (the padded batch's row, minus its padding) in the prefix cache."""
        if self.prefixes is None:
            return
        states = self._layer_states(cache)
        if states is None or states[0][0].shape[-2] != plen + width:
            self.prefixes, self.disabled_reason = None, "the model's cache cannot be cut by token (not plain key/value layers)"
            return
        for i, ids in enumerate(prompts):
            start = plen + width - (len(ids) - plen)
            self.prefixes.insert(ids, plen, [(k[i, :, start:], v[i, :, start:]) for k, v in states])

    def prefix(self, ids: list[int], length: int, warm_from: int | None) -> KV | None:
        """The states of ids[:length] for a batch: from the prefix cache, or (with `warm_from`) computed
        now after the cached ids[:warm_from] and kept for later prompts if the budget allows."""
        if length == 0 or self.prefixes is None:
            return None
        if warm_from is None:
            return self.prefixes.get(ids, length)
        _, cache, _ = self.forward(self.prefixes.get(ids, warm_from) if warm_from else None, warm_from,
                                   [list(ids[:length])])
        self.remember([list(ids[:length])], warm_from, cache, length - warm_from)
        states = self._layer_states(cache)
        return [(k[0], v[0]) for k, v in states] if states is not None and self.prefixes is not None else None

    # ------------------------------------------------------------------ answers
    def _alternatives(self, logits: torch.Tensor) -> list[list]:
        top = torch.topk(torch.log_softmax(logits, dim=-1), TOP_K, dim=-1)
        return [[self.tok.decode([int(t)]), float(v)] for v, t in zip(top.values, top.indices)]

    def score(self, prompts: list[list[int]], plen: int, prefix: KV | None) -> list[Completion]:
        """Answer by option probability: the next token's top alternatives after each prompt."""
        logits, cache, _ = self.forward(prefix, plen, prompts)
        self.remember(prompts, plen, cache, max(len(p) for p in prompts) - plen)
        out = []
        for i, p in enumerate(prompts):
            alts = self._alternatives(logits[i])
            out.append(Completion(text=alts[0][0], finish_reason="length", top_logprobs=[alts],
                                  usage={"prompt_tokens": len(p), "completion_tokens": 1}))
        return out

    def generate(self, prompts: list[list[int]], plen: int, prefix: KV | None, s: Sampling) -> list[Completion]:
        """Prefill after the shared prefix, then decode with the cache; a row ends at EOS, at a stop
        string (checked after every token) or at max_tokens, and leaves the batch at once."""
        width = max(len(p) for p in prompts) - plen
        logits, cache, mask = self.forward(prefix, plen, prompts)
        self.remember(prompts, plen, cache, width)
        limit = s.max_tokens or DEFAULT_MAX_TOKENS
        rows = list(range(len(prompts)))                       # batch row -> prompt index
        made: list[list[int]] = [[] for _ in prompts]
        texts, finish = [""] * len(prompts), ["length"] * len(prompts)
        firsts = [self._alternatives(logits[i]) for i in rows] if s.top_logprobs else None
        pickers = [_Picker(s) for _ in prompts]
        positions = mask.sum(-1, keepdim=True)
        for step in range(limit):
            tokens = [pickers[r].pick(logits[i]) for i, r in enumerate(rows)]
            keep = []
            for i, (r, t) in enumerate(zip(rows, tokens)):
                if t in self.eos:
                    finish[r] = "stop"
                    continue
                made[r].append(t)
                texts[r], stopped = self._cut(made[r], s.stop)
                if stopped:
                    finish[r] = "stop"
                elif step + 1 < limit:
                    keep.append(i)
            if not keep:
                break
            index = torch.tensor(keep, device=self.device)
            if len(keep) < len(rows):
                cache.batch_select_indices(index)
                mask, positions = mask[index], positions[index]
            rows = [rows[i] for i in keep]
            nxt = torch.tensor([[made[r][-1]] for r in rows], device=self.device)
            mask = torch.cat([mask, torch.ones((len(rows), 1), dtype=mask.dtype, device=self.device)], dim=1)
            with torch.no_grad():
                logits = self.lm(input_ids=nxt, attention_mask=mask, position_ids=positions, use_cache=True,
                                 **{self.cache_arg: cache}).logits[:, -1, :].float()
            positions = positions + 1
        return [Completion(text=texts[r], finish_reason=finish[r], top_logprobs=[firsts[r]] if firsts else None,
                           usage={"prompt_tokens": len(p), "completion_tokens": len(made[r])})
                for r, p in enumerate(prompts)]

    def _cut(self, ids: list[int], stops: tuple[str, ...]) -> tuple[str, bool]:
        """The decoded text so far, cut before the first stop string if one has appeared."""
        text = self.tok.decode(ids, skip_special_tokens=True)
        found = [text.index(x) for x in stops if x and x in text]
        return (text[: min(found)], True) if found else (text, False)


class _Picker:
    """The next token of one row: greedy at temperature 0, else sampled (temperature, top_p) from a
    generator seeded by the request's seed, so a row's draw does not depend on its batch."""

    def __init__(self, s: Sampling):
        self.temperature, self.top_p = s.temperature or 0.0, s.top_p
        self.gen = None
        if self.temperature > 0:
            self.gen = torch.Generator()
            if s.seed is not None:
                self.gen.manual_seed(int(s.seed))
            else:
                self.gen.seed()

    def pick(self, logits: torch.Tensor) -> int:
        if self.gen is None:
            return int(torch.argmax(logits))
        probs = torch.softmax(logits.cpu() / self.temperature, dim=-1)
        if self.top_p is not None and 0 < self.top_p < 1:
            ordered, order = torch.sort(probs, descending=True)
            drop = ordered.cumsum(-1) - ordered > self.top_p      # keep the smallest set reaching top_p
            ordered[drop] = 0
            probs = torch.zeros_like(probs).scatter(0, order, ordered)
        return int(torch.multinomial(probs / probs.sum(), 1, generator=self.gen))
