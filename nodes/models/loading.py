"""The one place that finds, checks, loads, caches, moves and frees models.

Loader nodes return a light :class:`ModelHandle` (folder, dtype, family); the weights live in this module's
cache, one model per kind keyed by (folder, dtype), so two sampler nodes share one copy and loading another folder
releases the previous one. Models rest on the offload device and move to the load device only while they run
(:func:`on_device`), after asking ComfyUI to free that much room; the move back happens in ``finally`` so an error
or a Cancel never leaves a model on the GPU. We chose this over wrapping in ComfyUI's ``ModelPatcher`` for the
foundation: it guarantees the caption model is off the GPU before Stable Audio samples, needs no container
modules around transformers/diffusers objects, and works the same in ComfyUI and in the CLI.

Loading is local only: ``from_pretrained(folder, local_files_only=True)``, safetensors only, never
``trust_remote_code``, never a hub id.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

DTYPES = ("auto", "fp32", "fp16", "bf16")

BLIP = "blip"
STABLE_AUDIO = "stable_audio"
CLAP = "clap"

BLIP_NODE = "Load BLIP Caption Model"
STABLE_AUDIO_NODE = "Load Stable Audio Model"
CLAP_NODE = "Load CLAP Model"

# model_index.json "_class_name" -> the family and the diffusers release that first has its pipeline
STABLE_AUDIO_FAMILIES: dict[str, dict[str, Any]] = {
    "StableAudioPipeline": {"label": "Stable Audio Open", "diffusers": "0.30.0"},
    "StableAudio3Pipeline": {"label": "Stable Audio 3", "diffusers": "0.42.0"},
}
# SA3 Small's autoencoder (SAME-S: AutoencoderSAME's default geometry). diffusers 0.42 lacks two of its parts
# (chunked attention, a kernel-3 mapping convolution), so a converted SAME-S decodes wrong audio: refused.
SAME_S_GEOMETRY = {"encoder_channels": 128, "latent_dim": 256, "encoder_transformer_depths": [6]}

BLIP_HELP = (
    "Put a transformers BLIP captioning folder there (config.json, model.safetensors, tokenizer and "
    "preprocessor files), e.g. `hf download Salesforce/blip-image-captioning-large --local-dir "
    "ComfyUI/models/blip/blip-image-captioning-large`, then refresh the page (R) so the list updates."
)
STABLE_AUDIO_HELP = (
    "Put a diffusers Stable Audio folder there (model_index.json with transformer/, vae/, text_encoder/, "
    "tokenizer/, projection_model/, scheduler/), e.g. accept the licence of stabilityai/stable-audio-open-1.0 on "
    "huggingface.co, `hf auth login`, then `hf download stabilityai/stable-audio-open-1.0 --local-dir "
    "ComfyUI/models/diffusers/stable-audio-open-1.0`, then refresh the page (R) so the list updates."
)
CLAP_HELP = (
    "Put a transformers CLAP folder there (config.json with model_type clap, model.safetensors, tokenizer and "
    "preprocessor files), e.g. `hf download laion/larger_clap_general --revision refs/pr/1 --local-dir "
    "ComfyUI/models/clap/larger_clap_general` (the LAION repos keep their safetensors weights in the Hub's "
    "conversion pull request, refs/pr/N: see the repo's Files page; their main branch has only pickle weights, "
    "which this pack refuses), then refresh the page (R) so the list updates."
)
# transformers model folders: kind -> (config.json model_type, loader node, help, what the folder must hold, class)
_TRANSFORMERS_KINDS = {
    BLIP: ("blip", BLIP_NODE, BLIP_HELP, "a BLIP captioning folder", "BlipForConditionalGeneration"),
    CLAP: ("clap", CLAP_NODE, CLAP_HELP, "a CLAP audio-text folder", "ClapModel"),
}

_SAFE_WEIGHTS = (".safetensors",)
_PICKLE_WEIGHTS = (".bin", ".ckpt", ".pt", ".pth", ".pkl")


@dataclass(frozen=True)
class ModelHandle:
    """What a loader node outputs: which model, not the weights.

    Attributes:
        kind: ``"blip"``, ``"stable_audio"`` or ``"clap"``.
        path: absolute folder.
        dtype: resolved dtype name (``fp32``/``fp16``/``bf16``).
        family: the model class (``BlipForConditionalGeneration``, ``StableAudioPipeline``...).
        name: the folder name the user picked (for messages and metadata).
    """

    kind: str
    path: str
    dtype: str
    family: str
    name: str


@dataclass
class DevicePlan:
    """Where a model runs and rests. In ComfyUI it comes from ``comfy_glue.device_plan``; standalone from
    :func:`standalone_plan`."""

    load_device: str = "cpu"
    offload_device: str = "cpu"
    auto_dtype: str = "fp32"
    free_memory: Callable[[int], Any] | None = None
    after_offload: Callable[[], Any] | None = None
    # keep_resident(key, modules): hold these modules on load_device between runs in a way the host can evict
    # (ComfyUI: a ModelPatcher registered with its model management); None: just move them there
    keep_resident: Callable[[str, dict], Any] | None = None
    moves: list = field(default_factory=list)  # (what, device) log, read by tests and benchmarks


def standalone_plan() -> DevicePlan:
    """Device plan without ComfyUI: the first CUDA GPU if there is one (fp16), else the CPU (fp32)."""
    import torch

    if torch.cuda.is_available():
        return DevicePlan(load_device="cuda", offload_device="cpu", auto_dtype="fp16",
                          after_offload=torch.cuda.empty_cache)
    return DevicePlan()


# ------------------------------------------------------------------------------------- Stable Audio memory modes
MEMORY_MODES = ("balanced", "fast", "low-vram")
MEMORY_HELP = (
    "balanced: the model moves to the GPU for the run and back after, VRAM free between runs (peak: Open 1.0 47 s "
    "2.8 GB, Stable Audio 3 Medium 380 s 4.9 GiB, fp16). fast: it stays on the GPU between runs, no transfer "
    "(SA3 Medium: 120 s in 0.65 s, 380 s in 1.36 s on an H100; Open 1.0 about 0.5 s less per run); ComfyUI still "
    "evicts it when another model needs room; required by compile. low-vram: one part at a time (and the two "
    "guidance passes one after the other): peak 2.3 GB for Open 1.0, 3.0 GiB for SA3 Medium 380 s, about 1 s "
    "slower, for 4-12 GB cards."
)
# the parts of both families (Open 1.0 has a projection model, Stable Audio 3 a duration embedder)
_SA_PARTS = ("text_encoder", "projection_model", "duration_embedder", "transformer", "vae")
# what each stage of generate_soundscape needs on the run device
_STAGE_NEEDS = {"encode": ("text_encoder", "projection_model", "duration_embedder"), "denoise": ("transformer",),
                "encode_audio": ("vae",), "decode": ("vae",)}
# what stays on the run device for the whole run (the rest visits for its stage)
_HELD = ("projection_model", "duration_embedder", "transformer", "vae")
_MODE_HELD = {"fast": ("text_encoder",) + _HELD, "balanced": _HELD, "low-vram": ()}
DECODE_CHUNK_FRAMES = {"fast": 128, "balanced": 96, "low-vram": 96}
# Stable Audio 3's SAME decoder: 256-latent chunks decode 380 s in 0.65 s at 5.2 GiB peak (H100, fp16, weights
# included), 128 in 0.89 s at 5.1 GiB (benchmarks/gpu_sa3.py); low-vram keeps the smaller chunk
SA3_DECODE_CHUNK_FRAMES = {"fast": 256, "balanced": 256, "low-vram": 128}
SPLIT_CFG = {"fast": False, "balanced": False, "low-vram": True}  # guidance halves one after the other


def decode_chunk_frames(plan: DevicePlan, memory: str, pipe=None) -> int:
    """VAE decode chunk for ``memory`` mode on ``plan``'s device. Stable Audio Open: chunked on a GPU (peak VRAM
    flat in length), whole on the CPU (RAM is plentiful there and whole decoding is about twice as fast). Stable
    Audio 3 (``pipe`` given): always chunked, as its SAME decoder's dense attention mask grows with the square of
    the length (tens of GiB for 380 s in one piece)."""
    from ..generate.sa3 import is_sa3

    if pipe is not None and is_sa3(pipe):
        return SA3_DECODE_CHUNK_FRAMES[memory]
    return DECODE_CHUNK_FRAMES[memory] if plan.load_device != "cpu" else 0


class OutOfMemory(ValueError):
    """The GPU ran out of memory; the model was released. The message says what to change."""


def _is_oom(err: BaseException) -> bool:
    import torch

    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    return isinstance(err, oom)


def sa_parts(pipe) -> tuple[str, ...]:
    """The pipeline's movable parts, in :data:`_SA_PARTS` order (each family has four of the five)."""
    return tuple(name for name in _SA_PARTS if getattr(pipe, name, None) is not None)


@contextlib.contextmanager
def stable_audio_session(handle: ModelHandle, plan: DevicePlan, memory: str = "balanced"):
    """Load ``handle`` (cached) and place its parts for one run in ``memory`` mode.

    Yields ``(pipe, stage)`` for :func:`soundscape.generate_soundscape`: ``stage(name)`` brings what a stage
    needs onto the run device. Afterwards (also on error or Cancel) the parts go back to the offload device,
    except in "fast" mode, where the transformer, decoder and projection stay (evictable by the host). A GPU
    out-of-memory error releases everything and becomes an :class:`OutOfMemory` that names the fixes.
    """
    if memory not in MEMORY_MODES:
        raise ValueError(f'Stable Audio Sampler: "memory" is {memory!r} but must be one of '
                         f'{", ".join(MEMORY_MODES)}. Pick one from the list.')
    pipe = load(handle, plan)
    parts = {name: getattr(pipe, name) for name in sa_parts(pipe)}
    moving = plan.load_device != plan.offload_device
    held = tuple(n for n in _MODE_HELD[memory] if n in parts)
    key = f"{handle.path}|{handle.dtype}"

    def place(names, device):
        for name in names:
            parts[name].to(device)
        plan.moves.append((tuple(names), device))

    @contextlib.contextmanager
    def stage(name: str):
        visiting = [n for n in _STAGE_NEEDS[name] if n in parts and n not in held] if moving else []
        if visiting:
            place(visiting, plan.load_device)
        try:
            yield
        finally:
            if visiting:
                place(visiting, plan.offload_device)

    try:
        if moving:
            if plan.free_memory is not None:
                biggest = max(model_bytes(p) for p in parts.values())
                plan.free_memory(sum(model_bytes(parts[n]) for n in held) + biggest + _WORKING_BYTES[STABLE_AUDIO])
            if memory == "fast" and plan.keep_resident is not None:
                plan.keep_resident(key, {n: parts[n] for n in held})
                plan.moves.append((held, plan.load_device))
            elif held:
                place(held, plan.load_device)
        yield pipe, stage
    except Exception as err:
        if _is_oom(err):
            if moving:
                place(tuple(parts), plan.offload_device)
            if plan.after_offload is not None:
                plan.after_offload()
            raise OutOfMemory(
                "Stable Audio Sampler: the GPU ran out of memory. Set \"memory\" to low-vram, or lower \"seconds\" "
                "or \"variations\", or close other models (Manager > Unload Models), then run again.") from err
        raise
    finally:
        if moving and memory != "fast":
            place(tuple(parts), plan.offload_device)
            if plan.after_offload is not None:
                plan.after_offload()


_COMPILED: dict[str, Any] = {}


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


# --------------------------------------------------------------------------------------------- finding folders
def _walk_dirs(root: str, max_depth: int = 3) -> Iterator[str]:
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        return
    for dirpath, dirnames, _ in os.walk(root, followlinks=True):
        depth = os.path.relpath(dirpath, root).count(os.sep) + (0 if dirpath == root else 1)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if depth >= max_depth:
            dirnames[:] = []
        yield dirpath


def _read_json(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def _is_transformers_folder(path: str, kind: str) -> bool:
    cfg = _read_json(os.path.join(path, "config.json"))
    return bool(cfg) and cfg.get("model_type") == _TRANSFORMERS_KINDS[kind][0]


def _node_and_help(kind: str) -> tuple[str, str]:
    """The loader node's display name and the folder help for ``kind``, for messages."""
    if kind in _TRANSFORMERS_KINDS:
        return _TRANSFORMERS_KINDS[kind][1], _TRANSFORMERS_KINDS[kind][2]
    return STABLE_AUDIO_NODE, STABLE_AUDIO_HELP


def _stable_audio_class(path: str) -> str | None:
    index = _read_json(os.path.join(path, "model_index.json"))
    name = index.get("_class_name") if index else None
    return name if isinstance(name, str) else None


def list_model_folders(kind: str, roots: list[str]) -> list[str]:
    """Model folders of ``kind`` under ``roots``, as names relative to their root (what the dropdown shows).

    BLIP / CLAP: folders whose config.json says ``model_type: blip`` / ``clap``. Stable Audio: folders with a
    model_index.json of a supported pipeline class. Cheap (reads small JSON files only): safe for ``INPUT_TYPES``.
    """
    found: list[str] = []
    for root in roots:
        for d in _walk_dirs(root):
            ok = (_is_transformers_folder(d, kind) if kind in _TRANSFORMERS_KINDS
                  else _stable_audio_class(d) in STABLE_AUDIO_FAMILIES)
            if ok:
                rel = os.path.relpath(d, os.path.abspath(root)).replace(os.sep, "/")
                if rel not in found:
                    found.append(rel)
    return sorted(found)


def resolve_model_folder(kind: str, name: str, roots: list[str]) -> str:
    """The absolute folder for dropdown value ``name``, checked; ``ValueError`` saying what to do otherwise.

    Refuses: a missing folder, a folder of another model type, pickle-only weights (never unpickled), and configs
    that ask for remote code (never executed).
    """
    (node, help_text), input_name = _node_and_help(kind), "model"
    searched = ", ".join(roots) if roots else "(no model folder is configured)"
    if not isinstance(name, str) or not name.strip() or os.path.isabs(name) or ".." in name.replace("\\", "/").split("/"):
        raise ValueError(f'{node}: "{input_name}" is {name!r}, which is not a folder name inside {searched}. '
                         f"Pick a folder from the list. {help_text}")
    path = None
    for root in roots:
        candidate = os.path.abspath(os.path.join(root, name))
        if os.path.isdir(candidate):
            path = candidate
            break
    if path is None:
        raise ValueError(f'{node}: "{input_name}" is "{name}" but no such folder was found in {searched}. {help_text}')

    if kind in _TRANSFORMERS_KINDS:
        model_type, _, _, wanted, _ = _TRANSFORMERS_KINDS[kind]
        cfg_path = os.path.join(path, "config.json")
        if not os.path.isfile(cfg_path):
            raise ValueError(f'{node}: "{input_name}" folder {path} has no config.json, so it is not a transformers '
                             f"model folder. {help_text}")
        cfg = _read_json(cfg_path)
        if cfg is None:
            raise ValueError(f'{node}: {cfg_path} is not valid JSON (a broken or partial download?). '
                             f"Download the folder again. {help_text}")
        if cfg.get("model_type") != model_type:
            raise ValueError(f'{node}: "{input_name}" folder {path} holds a "{cfg.get("model_type")}" model, not '
                             f"{model_type.upper()}. Pick {wanted}. {help_text}")
        configs = [cfg]
        weight_dirs = [path]
    else:
        index_path = os.path.join(path, "model_index.json")
        index = _read_json(index_path)
        if index is None:
            raise ValueError(f'{node}: "{input_name}" folder {path} has no readable model_index.json, so it is not '
                             f"a diffusers pipeline folder. {help_text}")
        cls = index.get("_class_name")
        if not isinstance(cls, str):  # ["module", "Class"]: a custom pipeline from Python files in the folder
            raise ValueError(f'{node}: "{input_name}" folder {path} asks to run its own Python pipeline code '
                             f"({cls!r}); this pack never runs code from model folders. Use the official folder. "
                             f"{help_text}")
        if cls not in STABLE_AUDIO_FAMILIES:
            raise ValueError(f'{node}: "{input_name}" folder {path} holds a {cls} pipeline; this node loads '
                             f"{', '.join(STABLE_AUDIO_FAMILIES)}. Pick a Stable Audio folder. {help_text}")
        _check_family_supported(node, input_name, path, cls)
        weight_dirs = [os.path.join(path, k) for k, v in index.items()
                       if not k.startswith("_") and isinstance(v, list) and os.path.isdir(os.path.join(path, k))]
        configs = [c for c in (_read_json(os.path.join(d, "config.json")) for d in weight_dirs) if c]

    for cfg in configs:
        if "auto_map" in cfg or cfg.get("trust_remote_code"):
            raise ValueError(f"{node}: the folder {path} asks to run its own Python code (auto_map); this pack never "
                             f"runs code from model folders. Use the official folder. {help_text}")
    for d in weight_dirs:
        files = os.listdir(d)
        has_pickle = any(f.endswith(_PICKLE_WEIGHTS) for f in files)
        has_safe = any(f.endswith(_SAFE_WEIGHTS) for f in files)
        if has_pickle and not has_safe:
            raise ValueError(f"{node}: {d} holds only pickle weights ({', '.join(f for f in files if f.endswith(_PICKLE_WEIGHTS))}), "
                             f"which can run code when loaded, so this pack refuses them. Download the .safetensors "
                             f"weights instead. {help_text}")
    return path


def _version(text: str) -> tuple[int, ...]:
    import re

    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def _check_family_supported(node: str, input_name: str, path: str, cls: str) -> None:
    """The installed diffusers must have the folder's pipeline; SA3 Small's SAME-S autoencoder is refused."""
    from importlib.metadata import PackageNotFoundError, version

    family = STABLE_AUDIO_FAMILIES[cls]
    try:
        installed = version("diffusers")
    except PackageNotFoundError:
        installed = "none"
    if installed == "none" or _version(installed) < _version(family["diffusers"]):
        raise ValueError(f'{node}: "{input_name}" folder {path} is a {family["label"]} model ({cls}), which needs '
                         f'diffusers {family["diffusers"]} or newer; this Python has diffusers {installed}. Run '
                         f'`pip install -U "diffusers>={family["diffusers"]}"` in ComfyUI\'s Python, restart ComfyUI '
                         "and run again.")
    if cls == "StableAudio3Pipeline":
        vae = _read_json(os.path.join(path, "vae", "config.json")) or {}
        geometry = {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in vae.items() if k in SAME_S_GEOMETRY}
        if {**SAME_S_GEOMETRY, **geometry} == SAME_S_GEOMETRY:  # unset keys take AutoencoderSAME's defaults
            raise ValueError(
                f'{node}: "{input_name}" folder {path} has the SAME-S autoencoder of Stable Audio 3 Small. diffusers '
                f"{installed} cannot represent SAME-S exactly (it lacks its chunked attention and kernel-3 mapping "
                "convolution), so this folder would make wrong audio, and the pack refuses it. Use Stable Audio 3 "
                "Medium (SAME-L) or Stable Audio Open 1.0 here, or ComfyUI's native Stable Audio 3 nodes for Small.")


def make_handle(kind: str, name: str, roots: list[str], dtype: str, plan: DevicePlan) -> ModelHandle:
    """Check the folder and resolve ``dtype`` ("auto" follows the plan) into a :class:`ModelHandle`; loads nothing."""
    node = _node_and_help(kind)[0]
    if dtype not in DTYPES:
        raise ValueError(f'{node}: "dtype" is {dtype!r} but must be one of {", ".join(DTYPES)}. Pick one from the list.')
    path = resolve_model_folder(kind, name, roots)
    resolved = plan.auto_dtype if dtype == "auto" else dtype
    family = _TRANSFORMERS_KINDS[kind][4] if kind in _TRANSFORMERS_KINDS else _stable_audio_class(path)
    return ModelHandle(kind=kind, path=path, dtype=resolved, family=family, name=name)


# --------------------------------------------------------------------------------------------- loading, caching
_CACHE: dict[str, tuple[tuple, Any]] = {}
_LOCK = threading.RLock()


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


def _load_stable_audio(handle: ModelHandle):
    import importlib.util

    import diffusers

    pipeline_cls = getattr(diffusers, handle.family)
    major_minor = tuple(int(x) for x in diffusers.__version__.split(".")[:2])
    dtype_kw = "dtype" if major_minor >= (0, 40) else "torch_dtype"  # torch_dtype is deprecated from 0.40
    dtype = _torch_dtype(handle.dtype)
    if handle.family == "StableAudio3Pipeline" and handle.dtype == "fp16":
        # T5Gemma is a Gemma model: trained in bf16, its activations overflow fp16; bf16 keeps the range
        import torch

        dtype = {"default": dtype, "text_encoder": torch.bfloat16}
    # diffusers warns that a half-precision pipeline "cannot run" on the CPU: it only rests there between runs
    pipeline_log = logging.getLogger("diffusers.pipelines.pipeline_utils")
    level = pipeline_log.level
    pipeline_log.setLevel(logging.ERROR)
    try:
        pipe = pipeline_cls.from_pretrained(
            handle.path, local_files_only=True, use_safetensors=True, **{dtype_kw: dtype},
            # without accelerate diffusers warns and falls back to this anyway; say it so the log stays clean
            low_cpu_mem_usage=importlib.util.find_spec("accelerate") is not None)
    finally:
        pipeline_log.setLevel(level)
    pipe.set_progress_bar_config(disable=True)
    exact_rotary_frequencies(pipe)
    return pipe


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

    Returns ``(model, processor)`` for BLIP and CLAP, the diffusers pipeline for Stable Audio. One model per kind
    is kept: loading another folder or dtype drops the previous one.
    """
    key = (handle.path, handle.dtype)
    with _LOCK:
        cached = _CACHE.get(handle.kind)
        if cached and cached[0] == key:
            return cached[1]
        _CACHE.pop(handle.kind, None)  # release the previous model of this kind before loading the next
        quiet_libraries()
        node, help_text = _node_and_help(handle.kind)
        log.info("loading %s from %s (%s)", handle.family, handle.path, handle.dtype)
        try:
            obj = {BLIP: _load_blip, CLAP: _load_clap}.get(handle.kind, _load_stable_audio)(handle)
        except Exception as err:  # noqa: BLE001 - any library failure on a bad folder becomes the one clear message
            raise _load_failed(node, handle.name, handle.path, err, help_text) from err
        if plan is not None and plan.offload_device != "cpu":
            _move(obj, plan.offload_device)
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


def _modules(obj) -> list:
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
    for m in _modules(obj):
        total += sum(p.numel() * p.element_size() for p in m.parameters())
        total += sum(b.numel() * b.element_size() for b in m.buffers())
    return total


def model_device(obj) -> str:
    """The device of the first parameter (``"cpu"``, ``"cuda:0"``...)."""
    for m in _modules(obj):
        for p in m.parameters():
            return str(p.device)
    return "cpu"


def _move(obj, device: str) -> None:
    for m in _modules(obj):
        m.to(device)


# Working memory beyond the weights while a model runs (activations, VAE decode); the request to ComfyUI.
_WORKING_BYTES = {BLIP: 1 << 30, STABLE_AUDIO: 3 << 29, CLAP: 1 << 30}


@contextlib.contextmanager
def on_device(handle: ModelHandle, plan: DevicePlan):
    """Load ``handle`` (cached) and hold it on ``plan.load_device`` for the ``with`` block.

    Asks ComfyUI to free room first; moves the model back to the offload device in ``finally`` (also after an
    error or a Cancel) and empties the allocator cache.
    """
    obj = load(handle, plan)
    moved = plan.load_device != plan.offload_device
    if moved:
        if plan.free_memory is not None:
            plan.free_memory(model_bytes(obj) + _WORKING_BYTES[handle.kind])
        _move(obj, plan.load_device)
        plan.moves.append((handle.kind, plan.load_device))
    try:
        yield obj
    finally:
        if moved:
            _move(obj, plan.offload_device)
            plan.moves.append((handle.kind, plan.offload_device))
            if plan.after_offload is not None:
                plan.after_offload()
