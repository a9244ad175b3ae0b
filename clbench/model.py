"""Load the embedded tiny model or any Hugging Face causal LM, and build the tiny one.

The embedded model is a Llama (LlamaConfig, not Qwen2Config: transformers would
reload a custom tokenizer as Qwen2's and drop spaces) with a character-level
tokenizer, so that the benchmark runs offline on a 2-core CPU in minutes.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch

EMBEDDED_NAME = "embedded"
EMBEDDED_DIR = Path(__file__).parent / "assets" / "tiny-llama"
SPECIALS = ["<pad>", "<eos>", "<unk>"]
# Every printable ASCII character plus newline: enough for all embedded tasks.
CHARS = list("\n" + "".join(chr(c) for c in range(32, 127)))
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['content'] }}{% endfor %}"
)


class ModelNotFound(ValueError):
    """A model that is neither embedded, a local folder, nor reachable."""


def build_char_tokenizer():
    """A PreTrainedTokenizerFast that maps every character to one token."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIALS + CHARS)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        eos_token="<eos>",
        unk_token="<unk>",
        padding_side="left",
        model_input_names=["input_ids", "attention_mask"],
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


def tiny_config(vocab_size: int, pad_id: int, eos_id: int):
    """4 layers x 192 wide, ~1.8M parameters: big enough for the probe skills,
    small enough to pretrain in
    minutes and to run an ES population on 2 cores."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=192,  # width; 4 heads of 48
        intermediate_size=512,  # ~2.7x width, SwiGLU
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=128,  # prompts + answers are < 64 characters
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,  # tiny vocabulary; saves nothing big, keeps it simple
        pad_token_id=pad_id,
        eos_token_id=eos_id,
        bos_token_id=None,
    )


@dataclass
class LoadedModel:
    model: torch.nn.Module
    tokenizer: object
    name: str
    path: str


def resolve_model_path(name_or_path: str) -> str:
    if name_or_path in (EMBEDDED_NAME, "", None):
        return str(EMBEDDED_DIR)
    p = Path(name_or_path).expanduser()
    if p.exists():
        if not (p / "config.json").exists():
            raise ModelNotFound(
                f"model: folder {p} has no config.json; point --model at a saved "
                "Hugging Face model folder (save_pretrained output)"
            )
        return str(p)
    if os.environ.get("HF_HUB_OFFLINE") == "1" and not _in_hub_cache(name_or_path):
        raise ModelNotFound(
            f"model: {name_or_path!r} is not a local folder and not in the Hugging Face cache, "
            "and the hub is offline (HF_HUB_OFFLINE=1, clbench's default); download it once "
            f"(HF_HUB_OFFLINE=0 hf download {name_or_path}), or run with HF_HUB_OFFLINE=0 to "
            "let clbench fetch it, or pass --model /path/to/saved/model"
        )
    return name_or_path


def check_model(name_or_path: str) -> str:
    """resolve_model_path, and for a local folder also read its config and find weights:
    `clbench run` writes config.json once this passes, so a folder with a torn config.json
    or no weights must fail here rather than leave a run folder that cannot start."""
    path = resolve_model_path(name_or_path)
    if not Path(path).is_dir() or path == str(EMBEDDED_DIR):
        return path
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as e:
        raise ModelNotFound(f"model: {path}/config.json is not a model config ({str(e)[:160]}); "
                            "point --model at a saved Hugging Face model folder") from None
    if not any(Path(path).glob("*.safetensors")) and not any(Path(path).glob("*.bin")):
        raise ModelNotFound(f"model: folder {path} holds no weights (*.safetensors or *.bin); "
                            "point --model at a saved Hugging Face model folder")
    from safetensors import safe_open

    for f in sorted(Path(path).glob("*.safetensors")):  # reads the header only, not the weights
        try:
            with safe_open(str(f), "pt"):
                pass
        except Exception as e:  # SafetensorError (torn or not safetensors), OSError
            raise ModelNotFound(f"model: {f} is not a readable safetensors file ({str(e)[:160]}); "
                                "save the model again (model.save_pretrained) or point --model "
                                "at another folder") from None
    return path


def check_device(device: str) -> None:
    """cuda asked for on a machine without one is the user's error, said before any work."""
    if device == "cuda" and not torch.cuda.is_available():
        from clbench.errors import UserError

        raise UserError("device: cuda was asked for but torch sees no CUDA GPU; use --device cpu or auto")


def _in_hub_cache(repo_id: str) -> bool:
    """A hub name already downloaded loads offline from the cache: nothing is fetched."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:  # not a valid repo id
        return False


def load_model(name_or_path: str = EMBEDDED_NAME, dtype: str = "float32",
               device: str = "cpu") -> LoadedModel:
    """Load a causal LM and its tokenizer; left padding for batched generation."""
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model_path(name_or_path)
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16,
                   "float16": torch.float16}[dtype]
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    check_device(device)
    try:
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
    except (OSError, ValueError, SafetensorError) as e:
        raise ModelNotFound(
            f"model: could not load {name_or_path!r} ({e.__class__.__name__}: {str(e)[:160]}); "
            "pass a saved model folder with --model, or download it while online "
            f"(HF_HUB_OFFLINE=0 hf download {name_or_path})"
        ) from None
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.to(device).eval()
    name = EMBEDDED_NAME if path == str(EMBEDDED_DIR) else str(name_or_path)
    return LoadedModel(model=model, tokenizer=tok, name=name, path=path)


def weights_fingerprint(model: torch.nn.Module) -> str:
    """sha256 over parameter names, shapes, dtypes and bytes (first 16 hex digits)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.detach().to("cpu").contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Named parameters without copying, tied tensors once (drift is not counted twice)."""
    return {n: p.detach() for n, p in model.named_parameters()}


def param_copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of every parameter, tied tensors once, in the model's order."""
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def stop_token_ids(tokenizer, newline: bool = True) -> list[int]:
    """Generation stops at EOS, and at newline (end of an embedded answer) when asked.
    A chat model also stops at the end of its turn (e.g. Qwen's <|im_end|>)."""
    ids = [tokenizer.eos_token_id]
    for special in ("<|im_end|>", "<|eot_id|>"):
        tid = tokenizer.convert_tokens_to_ids(special)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id and tid not in ids:
            ids.append(tid)
    nl = tokenizer.convert_tokens_to_ids("\n") if newline else None
    if isinstance(nl, int) and nl != tokenizer.unk_token_id:
        ids.append(nl)
    return ids


__all__ = ["build_char_tokenizer", "tiny_config", "load_model", "check_model", "weights_fingerprint",
           "stop_token_ids", "ModelNotFound", "EMBEDDED_DIR"]
