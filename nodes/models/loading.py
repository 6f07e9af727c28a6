"""Loading and caching models: one model per kind, loaded from a checked folder (local files only).

Loader nodes return a light :class:`folders.ModelHandle` (folder, dtype, family); the weights live in this
module's cache, one model per kind keyed by (folder, dtype), so two sampler nodes share one copy and loading
another folder releases the previous one (and its compiled transformer). Where they run: :mod:`devices`.

Loading is local only: ``from_pretrained(folder, local_files_only=True)``, safetensors only, never
``trust_remote_code``, never a hub id.
"""
from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING, Any

from .families import is_sa3
from .folders import BLIP, CLAP, LLM, STABLE_AUDIO, ModelHandle, node_and_help, read_json

if TYPE_CHECKING:
    from .plan import DevicePlan

log = logging.getLogger(__name__)

_CACHE: dict[str, tuple[tuple, Any]] = {}
_LOCK = threading.RLock()
_COMPILED: dict[str, Any] = {}  # one compiled transformer, dropped with its model


def _torch_dtype(name: str):
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[name]


class _NoTorchvisionNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "requires torchvision (not installed)" not in record.getMessage()


def quiet_libraries() -> None:
    import warnings

    warnings.filterwarnings("ignore", module="torchsde")
    warnings.filterwarnings("ignore", message=".*weight_norm.*is deprecated.*")
    # transformers 5 without torchvision: BLIP's processor falls back to its PIL twin (same output) and says so
    import_log = logging.getLogger("transformers.utils.import_utils")
    if not any(isinstance(f, _NoTorchvisionNotice) for f in import_log.filters):
        import_log.addFilter(_NoTorchvisionNotice())
    try:
        import transformers

        transformers.utils.logging.disable_progress_bar()
    except (ImportError, AttributeError):
        pass
    try:
        import diffusers

        diffusers.utils.logging.disable_progress_bar()
    except (ImportError, AttributeError):
        pass


def _load_failed(node: str, name: str, path: str, err: Exception, help_text: str) -> ValueError:
    detail = str(err).splitlines()[0] if str(err) else ""
    return ValueError(f'{node}: could not load "model" {name!r} ({path}): {type(err).__name__}: {detail}. '
                      f"The folder may be incomplete or corrupt; download it again. {help_text}")


def _load_blip(handle: ModelHandle):
    from transformers import BlipForConditionalGeneration, BlipProcessor

    processor = BlipProcessor.from_pretrained(handle.path, local_files_only=True)
    model = BlipForConditionalGeneration.from_pretrained(
        handle.path, local_files_only=True, use_safetensors=True, dtype=_torch_dtype(handle.dtype))
    model.eval()
    return model, processor


def _load_clap(handle: ModelHandle):
    from transformers import ClapModel, ClapProcessor

    processor = ClapProcessor.from_pretrained(handle.path, local_files_only=True)
    model = ClapModel.from_pretrained(handle.path, local_files_only=True, use_safetensors=True,
                                      dtype=_torch_dtype(handle.dtype))
    model.eval()
    return model, processor


def _load_llm(handle: ModelHandle):
    """A prompt LLM: ``(model, tokenizer)`` of a causal LM folder (never its own code: ``trust_remote_code`` off)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(handle.path, local_files_only=True, trust_remote_code=False)
    model = AutoModelForCausalLM.from_pretrained(handle.path, local_files_only=True, use_safetensors=True,
                                                 trust_remote_code=False, dtype=_torch_dtype(handle.dtype))
    model.eval()
    return model, tokenizer


def _load_stable_audio(handle: ModelHandle):
    import diffusers

    pipeline_cls = getattr(diffusers, handle.family)
    major_minor = tuple(int(x) for x in diffusers.__version__.split(".")[:2])
    dtype_kw = "dtype" if major_minor >= (0, 40) else "torch_dtype"  # torch_dtype is deprecated from 0.40
    dtype = _torch_dtype(handle.dtype)
    if is_sa3(handle) and handle.dtype == "fp16":
        # T5Gemma is a Gemma model: trained in bf16, its activations overflow fp16; bf16 keeps the range
        import torch

        dtype = {"default": dtype, "text_encoder": torch.bfloat16}
    # diffusers warns that a half-precision pipeline "cannot run" on the CPU: it only rests there between runs
    pipeline_log = logging.getLogger("diffusers.pipelines.pipeline_utils")
    level = pipeline_log.level
    pipeline_log.setLevel(logging.ERROR)
    try:
        pipe = pipeline_from_folder(pipeline_cls, handle.path, dtype_kw, dtype)
    finally:
        pipeline_log.setLevel(level)
    pipe.set_progress_bar_config(disable=True)
    exact_rotary_frequencies(pipe)
    return pipe


def pipeline_from_folder(pipeline_cls, path: str, dtype_kw: str = "dtype", dtype=None):
    """``pipeline_cls.from_pretrained(path)``, local safetensors only, with the parts diffusers' own classes would
    not hold exactly loaded by this pack: a SAME-S autoencoder (``vae/config.json`` names
    ``AutoencoderSAMEChunked``, as ``convert-sa3`` writes Stable Audio 3 Small). ``dtype_kw``: diffusers' dtype
    keyword (``dtype``, or ``torch_dtype`` before 0.40); ``dtype``: one torch dtype, or a dict by component with a
    ``"default"``; ``None``: as saved."""
    import importlib.util

    # without accelerate diffusers warns and falls back to this anyway; say it so the log stays clean
    low_memory = importlib.util.find_spec("accelerate") is not None
    config = read_json(os.path.join(path, "vae", "config.json")) or {}
    if config.get("_class_name") != "AutoencoderSAMEChunked":
        return pipeline_cls.from_pretrained(path, local_files_only=True, use_safetensors=True,
                                            low_cpu_mem_usage=low_memory, **{dtype_kw: dtype})
    from .same_s import AutoencoderSAMEChunked

    vae_dtype = dtype.get("vae", dtype.get("default")) if isinstance(dtype, dict) else dtype
    vae = AutoencoderSAMEChunked.from_pretrained(os.path.join(path, "vae"), local_files_only=True,
                                                 use_safetensors=True, low_cpu_mem_usage=low_memory,
                                                 **{dtype_kw: vae_dtype})
    return pipeline_cls.from_pretrained(path, local_files_only=True, use_safetensors=True,
                                        low_cpu_mem_usage=low_memory, vae=vae.eval(), **{dtype_kw: dtype})


def exact_rotary_frequencies(pipe) -> int:
    """Recompute every rotary ``inv_freq`` buffer of the pipeline's transformer and VAE in fp32.

    ``from_pretrained(dtype=half)`` casts them, and positions are then computed in that dtype: bf16 counts exactly
    only to 256 (about 18 s of Stable Audio 3 latents, with its memory tokens), fp16 to 2048; at 380 s positions in
    bf16 are off by up to 31. The frequencies follow from the buffer's size (``1 / 10000^(2i/dim)``); the
    recomputed values are checked against the loaded ones before they replace them. Returns how many were fixed.
    """
    import torch

    fixed = 0
    for part in (getattr(pipe, "transformer", None), getattr(pipe, "vae", None)):
        if part is None:
            continue
        for module in part.modules():
            buf = getattr(module, "inv_freq", None)
            if not isinstance(buf, torch.Tensor) or buf.dtype == torch.float32 or buf.ndim != 1:
                continue
            dim = 2 * buf.numel()
            exact = 1.0 / (10000 ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
            if not torch.allclose(exact.to(buf.dtype).float(), buf.float().cpu(), rtol=1e-2, atol=0):
                continue  # not the standard base: leave it
            module.inv_freq = exact.to(buf.device)
            fixed += 1
    return fixed


def load(handle: ModelHandle, plan: DevicePlan | None = None):
    """The loaded model for ``handle``, from the cache or from disk (onto ``plan.offload_device``).

    Returns ``(model, processor)`` for BLIP and CLAP, ``(model, tokenizer)`` for a prompt LLM, the diffusers
    pipeline for Stable Audio. One model per kind is kept: loading another folder or dtype drops the previous one.
    """
    key = (handle.path, handle.dtype)
    with _LOCK:
        cached = _CACHE.get(handle.kind)
        if cached and cached[0] == key:
            return cached[1]
        _CACHE.pop(handle.kind, None)  # release the previous model of this kind before loading the next
        quiet_libraries()
        node, help_text = node_and_help(handle.kind)
        log.info("loading %s from %s (%s)", handle.family, handle.path, handle.dtype)
        try:
            obj = {BLIP: _load_blip, CLAP: _load_clap, LLM: _load_llm}.get(handle.kind, _load_stable_audio)(handle)
        except Exception as err:  # noqa: BLE001 - any library failure on a bad folder becomes the one clear message
            raise _load_failed(node, handle.name, handle.path, err, help_text) from err
        if plan is not None and plan.offload_device != "cpu":
            move_to(obj, plan.offload_device)
        _CACHE[handle.kind] = (key, obj)
        return obj


def unload(kind: str | None = None) -> None:
    """Drop cached models (one kind, or all)."""
    with _LOCK:
        for k in [kind] if kind else list(_CACHE):
            _CACHE.pop(k, None)
            if k == STABLE_AUDIO:
                _COMPILED.clear()


def cached_kinds() -> list[str]:
    return sorted(_CACHE)


def modules_of(obj) -> list:
    """The torch modules of a loaded model: the model of a (model, processor) pair, or a pipeline's components."""
    import torch

    if isinstance(obj, tuple):
        obj = obj[0]
    if isinstance(obj, torch.nn.Module):
        return [obj]
    components = getattr(obj, "components", {}) or {}
    return [m for m in components.values() if isinstance(m, torch.nn.Module)]


def model_bytes(obj) -> int:
    """Bytes of parameters and buffers of a loaded model or pipeline."""
    total = 0
    for m in modules_of(obj):
        total += sum(p.numel() * p.element_size() for p in m.parameters())
        total += sum(b.numel() * b.element_size() for b in m.buffers())
    return total


def model_device(obj) -> str:
    """The device of the first parameter (``"cpu"``, ``"cuda:0"``...)."""
    for m in modules_of(obj):
        for p in m.parameters():
            return str(p.device)
    return "cpu"


def move_to(obj, device: str) -> None:
    """Move every module of a loaded model or pipeline to ``device``."""
    for m in modules_of(obj):
        m.to(device)




def compiled_transformer(handle: ModelHandle, pipe, cache_dir: str | None = None):
    """``pipe.transformer`` compiled with ``torch.compile(mode="reduce-overhead")`` (CUDA graphs), once per model.

    Compiled code is cached on disk (``cache_dir``, else ``~/.cache/image-to-ambient-audio/inductor``), so a fresh
    process recompiles from the cache instead of from scratch. Each window bucket is its own graph.
    """
    import torch

    key = f"{handle.path}|{handle.dtype}"
    if key not in _COMPILED:
        cache = cache_dir or os.path.join(os.path.expanduser("~"), ".cache", "image-to-ambient-audio", "inductor")
        os.makedirs(cache, exist_ok=True)
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", cache)
        _COMPILED.clear()  # one compiled model at a time
        _COMPILED[key] = torch.compile(pipe.transformer, mode="reduce-overhead", dynamic=False)
    return _COMPILED[key]
