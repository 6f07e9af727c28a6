"""Finding and checking model folders, and the light handle a loader node outputs (stdlib only).

Folders are local only: a dropdown name resolves inside the configured roots, and a folder is refused before
anything loads when it is not the kind asked for, holds only pickle weights (never unpickled) or asks to run its
own Python code (never run). Stable Audio folders are checked against :data:`families.FAMILIES`.
"""
from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .families import PIPELINES, SA3_PIPELINE, family_for_class, refused_family

if TYPE_CHECKING:
    from .plan import DevicePlan

DTYPES = ("auto", "fp32", "fp16", "bf16")

BLIP = "blip"
STABLE_AUDIO = "stable_audio"
CLAP = "clap"
LLM = "llm"

BLIP_NODE = "Load BLIP Caption Model"
STABLE_AUDIO_NODE = "Load Stable Audio Model"
CLAP_NODE = "Load CLAP Model"
LLM_NODE = "Load Prompt LLM"

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
SA3_CONVERT = (
    "`hf download google/t5gemma-b-b-ul2 --local-dir t5gemma-b-b-ul2`, then `python -m nodes.cli convert-sa3 "
    "stable-audio-3-medium.safetensors {dir} --text-encoder t5gemma-b-b-ul2` (README, \"Stable Audio 3\": the "
    "checkpoint is the official stable-audio-3-medium.safetensors that ComfyUI's native nodes load)"
)
SA3_HELP = (
    "Stable Audio 3 has no diffusers download: convert its official checkpoint once into that folder: "
    + SA3_CONVERT + ", then refresh the page (R) so the list updates."
)
_SA3_NAME = re.compile(r"stable[-_ ]?audio[-_ ]?3|(^|[^a-z0-9])sa-?3($|[^0-9])", re.IGNORECASE)
CLAP_HELP = (
    "Put a transformers CLAP folder there (config.json with model_type clap, model.safetensors, tokenizer and "
    "preprocessor files), e.g. `hf download laion/larger_clap_general --revision refs/pr/1 --local-dir "
    "ComfyUI/models/clap/larger_clap_general` (the LAION repos keep their safetensors weights in the Hub's "
    "conversion pull request, refs/pr/N: see the repo's Files page; their main branch has only pickle weights, "
    "which this pack refuses), then refresh the page (R) so the list updates."
)
LLM_HELP = (
    "Put a transformers instruct (chat) model folder there (config.json of a ...ForCausalLM model, "
    "model.safetensors or its shards, tokenizer.json and tokenizer_config.json), e.g. `hf download "
    "Qwen/Qwen2.5-1.5B-Instruct --local-dir ComfyUI/models/LLM/Qwen2.5-1.5B-Instruct`, then refresh the page (R) "
    "so the list updates."
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


def _is_transformers_folder(path: str, kind: str) -> bool:
    cfg = read_json(os.path.join(path, "config.json"))
    return bool(cfg) and cfg.get("model_type") == _TRANSFORMERS_KINDS[kind][0]


def node_and_help(kind: str) -> tuple[str, str]:
    """The loader node's display name and the folder help for ``kind``, for messages."""
    if kind in _TRANSFORMERS_KINDS:
        return _TRANSFORMERS_KINDS[kind][1], _TRANSFORMERS_KINDS[kind][2]
    if kind == LLM:
        return LLM_NODE, LLM_HELP
    return STABLE_AUDIO_NODE, STABLE_AUDIO_HELP


def names_sa3(name: str) -> bool:
    """True when a folder name asks for Stable Audio 3 (``stable-audio-3-medium``, ``sa3_medium``...)."""
    return isinstance(name, str) and bool(_SA3_NAME.search(os.path.basename(name.rstrip("/\\"))))


def help_for(kind: str, name: str, roots: list[str]) -> str:
    """The folder help for a ``kind`` folder named ``name``: for a Stable Audio 3 name, the convert-sa3 steps into
    that folder; else the kind's download help."""
    if kind == STABLE_AUDIO and names_sa3(name):
        target = os.path.join(roots[0], name) if roots else os.path.join("ComfyUI", "models", "diffusers", name)
        return SA3_HELP.format(dir=shlex.quote(target))
    return node_and_help(kind)[1]


def read_json(path: str) -> dict | None:
    """The JSON object in ``path``, or ``None`` when it is missing, unreadable or not an object."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def _stable_audio_class(path: str) -> str | None:
    index = read_json(os.path.join(path, "model_index.json"))
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
            if kind == LLM:
                ok = causal_lm_class(d) is not None
            else:
                ok = (_is_transformers_folder(d, kind) if kind in _TRANSFORMERS_KINDS
                      else _stable_audio_class(d) in PIPELINES)
            if ok:
                rel = os.path.relpath(d, os.path.abspath(root)).replace(os.sep, "/")
                if rel not in found:
                    found.append(rel)
    return sorted(found)




def resolve_model_folder(kind: str, name: str, roots: list[str]) -> str:
    """The absolute folder for dropdown value ``name``, checked; ``ValueError`` saying what to do otherwise.

    Refuses: a missing folder, a folder of another model type, pickle-only weights (never unpickled), and configs
    or components that ask for code from the folder (never executed).
    """
    node = node_and_help(kind)[0]
    help_text = help_for(kind, name, roots)
    path = _find_folder(node, help_text, name, roots)
    if kind not in _TRANSFORMERS_KINDS and _stable_audio_class(path) == SA3_PIPELINE:
        help_text = SA3_HELP.format(dir=shlex.quote(path))
    if kind in _TRANSFORMERS_KINDS:
        configs, weight_dirs = _check_transformers_folder(node, help_text, kind, path)
    elif kind == LLM:
        configs, weight_dirs = check_llm_folder(node, help_text, path)
    else:
        configs, weight_dirs = _check_pipeline_folder(node, help_text, path)
    for cfg in configs:
        if "auto_map" in cfg or cfg.get("trust_remote_code"):
            raise ValueError(f'{node}: "model" folder {path} asks to run its own Python code (auto_map); this pack '
                             f"never runs code from model folders. Use the official folder. {help_text}")
    for d in weight_dirs:
        pickles = [f for f in os.listdir(d) if f.endswith(_PICKLE_WEIGHTS)]
        if pickles and not any(f.endswith(_SAFE_WEIGHTS) for f in os.listdir(d)):
            raise ValueError(f'{node}: "model" folder {path} holds only pickle weights in {d} ({", ".join(pickles)}), '
                             f"which can run code when loaded, so this pack refuses them. Download the .safetensors "
                             f"weights instead. {help_text}")
    lacking = _lacking_parts(kind, path)
    if lacking:
        raise ValueError(f'{node}: "model" folder {path} is incomplete: it lacks {"; ".join(lacking)} (a partial '
                         f"or interrupted download?). {redownload(kind, path)}")
    return path


_TOKENIZER_VOCABS = ("tokenizer.json", "spiece.model", "tokenizer.model", "vocab.txt")
_TRANSFORMERS_PARTS = ("model", "tokenizer", "processor")  # BLIP and CLAP keep them all at the folder's top


def _lacking_files(folder: str, part: str) -> list[str]:
    """The files ``part`` ("model", "tokenizer", "processor" or "scheduler") lacks in ``folder``, as the real
    downloads and the tiny test folders both have them (a tokenizer: tokenizer_config.json, which sets its length
    limit, and tokenizer.json or its vocabulary files)."""
    names = set(os.listdir(folder)) if os.path.isdir(folder) else set()
    if part == "scheduler":
        return [] if "scheduler_config.json" in names else ["scheduler_config.json"]
    if part == "processor":
        return [] if names & {"preprocessor_config.json", "processor_config.json"} else ["preprocessor_config.json"]
    if part == "tokenizer":
        lacking = [] if "tokenizer_config.json" in names else ["tokenizer_config.json"]
        if not (names & set(_TOKENIZER_VOCABS) or {"vocab.json", "merges.txt"} <= names):
            lacking.append("tokenizer.json (or its vocabulary: spiece.model, tokenizer.model, vocab.txt, or "
                           "vocab.json + merges.txt)")
        return lacking
    lacking = [] if "config.json" in names else ["config.json"]
    if not any(n.endswith(".safetensors") for n in names):
        return lacking + ["the .safetensors weights"]
    for index in sorted(n for n in names if n.endswith(".safetensors.index.json")):
        shards = (read_json(os.path.join(folder, index)) or {}).get("weight_map", {})
        lacking += sorted({s for s in shards.values() if isinstance(s, str) and s not in names})
    return lacking


def _lacking_parts(kind: str, path: str) -> list[str]:
    """What a checked folder of ``kind`` lacks, one entry per part: "tokenizer_config.json, tokenizer.json (...)"
    for BLIP/CLAP, "tokenizer/ (the whole folder)" or "tokenizer/ (scheduler_config.json)" for a pipeline."""
    if kind in _TRANSFORMERS_KINDS:
        return [", ".join(files) for part in _TRANSFORMERS_PARTS if (files := _lacking_files(path, part))]
    index = read_json(os.path.join(path, "model_index.json")) or {}
    family = family_for_class(index.get("_class_name", ""))
    lacking = []
    for part in family.components if family else ():
        folder = os.path.join(path, part)
        if not isinstance(index.get(part), list) or not os.path.isdir(folder):
            where = "" if isinstance(index.get(part), list) else ", and its entry in model_index.json"
            lacking.append(f"{part}/ (the whole folder{where})")
        elif files := _lacking_files(folder, part if part in ("tokenizer", "scheduler") else "model"):
            lacking.append(f"{part}/ ({', '.join(files)})")
    return lacking


def redownload(kind: str, path: str) -> str:
    """How to get a complete ``kind`` folder back at ``path``: its ``hf download`` (Open, BLIP, CLAP; the hub repo
    the folder name points at) or the convert-sa3 steps (Stable Audio 3)."""
    base, quoted = os.path.basename(os.path.normpath(path)), shlex.quote(path)
    if kind == BLIP:
        repo = base if base.startswith("blip-image-captioning-") else "blip-image-captioning-large"
        return f"Download it again: `hf download Salesforce/{repo} --local-dir {quoted}`."
    if kind == CLAP:
        repo = base if base in ("clap-htsat-unfused", "clap-htsat-fused", "larger_clap_music",
                                "larger_clap_music_and_speech") else "larger_clap_general"
        return (f"Download it again: `hf download laion/{repo} --revision refs/pr/N --local-dir {quoted}`, with "
                "refs/pr/N the Hub's safetensors conversion pull request on the repo's Files page (refs/pr/1 for "
                "larger_clap_general): the main branch has only pickle weights.")
    if _stable_audio_class(path) == SA3_PIPELINE or names_sa3(base):
        return ("Convert it again (the converter never overwrites, so move the broken folder away first): "
                + SA3_CONVERT.format(dir=quoted) + ".")
    return (f"Download it again: accept the licence of stabilityai/stable-audio-open-1.0 on huggingface.co, "
            f"`hf auth login`, then `hf download stabilityai/stable-audio-open-1.0 --local-dir {quoted}`.")


def _find_folder(node: str, help_text: str, name: str, roots: list[str]) -> str:
    """The first folder ``name`` under ``roots``; a name that leaves its root (absolute, ``..``) is refused."""
    searched = ", ".join(roots) if roots else "(no model folder is configured)"
    if not isinstance(name, str) or not name.strip() or os.path.isabs(name) or ".." in name.replace("\\", "/").split("/"):
        raise ValueError(f'{node}: "model" is {name!r}, which is not a folder name inside {searched}. '
                         f"Pick a folder from the list. {help_text}")
    for root in roots:
        candidate = os.path.abspath(os.path.join(root, name))
        if os.path.isdir(candidate):
            return candidate
    raise ValueError(f'{node}: "model" is "{name}" but no such folder was found in {searched}. {help_text}')


def _check_transformers_folder(node: str, help_text: str, kind: str, path: str) -> tuple[list[dict], list[str]]:
    """(configs, weight folders) of a transformers folder of ``kind``; refuses another model type."""
    model_type, _, _, wanted, _ = _TRANSFORMERS_KINDS[kind]
    cfg_path = os.path.join(path, "config.json")
    if not os.path.isfile(cfg_path):
        raise ValueError(f'{node}: "model" folder {path} has no config.json, so it is not a transformers '
                         f"model folder. {help_text}")
    cfg = read_json(cfg_path)
    if cfg is None:
        raise ValueError(f'{node}: "model" folder {path} has a config.json that is not valid JSON (a broken or '
                         f"partial download?). Download the folder again. {help_text}")
    if cfg.get("model_type") != model_type:
        raise ValueError(f'{node}: "model" folder {path} holds a "{cfg.get("model_type")}" model, not '
                         f"{model_type.upper()}. Pick {wanted}. {help_text}")
    return [cfg], [path]


def _check_pipeline_folder(node: str, help_text: str, path: str) -> tuple[list[dict], list[str]]:
    """(component configs, component folders) of a Stable Audio pipeline folder; refuses another pipeline, a
    family the installed diffusers lacks or the pack refuses, and pipeline or component code in the folder."""
    index = read_json(os.path.join(path, "model_index.json"))
    if index is None:
        raise ValueError(f'{node}: "model" folder {path} has no readable model_index.json, so it is not '
                         f"a diffusers pipeline folder. {help_text}")
    cls = index.get("_class_name")
    if not isinstance(cls, str):  # ["module", "Class"]: a custom pipeline from Python files in the folder
        raise ValueError(f'{node}: "model" folder {path} asks to run its own Python pipeline code ({cls!r}); this '
                         f"pack never runs code from model folders. Use the official folder. {help_text}")
    if cls not in PIPELINES:
        raise ValueError(f'{node}: "model" folder {path} holds a {cls} pipeline; this node loads '
                         f"{', '.join(PIPELINES)}. Pick a Stable Audio folder. {help_text}")
    check_family_supported(node, path, cls)
    libraries = family_for_class(cls).libraries
    components = {k: v for k, v in index.items() if not k.startswith("_") and isinstance(v, list)}
    for part, spec in components.items():
        library = spec[0] if spec else None
        if library is not None and library not in libraries:  # ["my_module", "MyClass"]: code in the folder
            raise ValueError(f'{node}: "model" folder {path} asks to run its own Python code for its {part} '
                             f"({library!r}); this pack never runs code from model folders. Use the official "
                             f"folder. {help_text}")
    weight_dirs = [os.path.join(path, k) for k in components if os.path.isdir(os.path.join(path, k))]
    return [c for c in (read_json(os.path.join(d, "config.json")) for d in weight_dirs) if c], weight_dirs


def _version(text: str) -> tuple[int, ...]:
    import re

    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def check_family_supported(node: str, path: str, cls: str) -> None:
    """The installed diffusers must have the folder's pipeline; a refused family (SA3 Small's SAME-S autoencoder)
    is refused with its reason."""
    from importlib.metadata import PackageNotFoundError, version

    family = family_for_class(cls)
    try:
        installed = version("diffusers")
    except PackageNotFoundError:
        installed = "none"
    if installed == "none" or _version(installed) < _version(family.min_diffusers):
        raise ValueError(f'{node}: "model" folder {path} is a {family.label} model ({cls}), which needs '
                         f"diffusers {family.min_diffusers} or newer; this Python has diffusers {installed}. Run "
                         f'`pip install -U "diffusers>={family.min_diffusers}"` in ComfyUI\'s Python, restart '
                         "ComfyUI and run again.")
    refused = refused_family(cls, read_json(os.path.join(path, "vae", "config.json")) or {})
    if refused is not None:
        raise ValueError(f'{node}: "model" folder {path} ' + refused.refused.format(installed=installed))


def make_handle(kind: str, name: str, roots: list[str], dtype: str, plan: DevicePlan) -> ModelHandle:
    """Check the folder and resolve ``dtype`` ("auto" follows the plan) into a :class:`ModelHandle`; loads nothing."""
    node = node_and_help(kind)[0]
    if dtype not in DTYPES:
        raise ValueError(f'{node}: "dtype" is {dtype!r} but must be one of {", ".join(DTYPES)}. Pick one from the list.')
    path = resolve_model_folder(kind, name, roots)
    resolved = plan.auto_dtype if dtype == "auto" else dtype
    family = _TRANSFORMERS_KINDS[kind][4] if kind in _TRANSFORMERS_KINDS else _stable_audio_class(path)
    if kind == LLM:
        family = causal_lm_class(path)
    return ModelHandle(kind=kind, path=path, dtype=resolved, family=family, name=name)


# ------------------------------------------------------------------------------- prompt LLMs (models/LLM)
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model")


def causal_lm_class(path: str) -> str | None:
    """The ``...ForCausalLM`` class a folder's config.json names (``Qwen2ForCausalLM``...), or ``None``."""
    cfg = read_json(os.path.join(path, "config.json"))
    names = cfg.get("architectures") if cfg else None
    found = [n for n in names if isinstance(n, str) and n.endswith("ForCausalLM")] if isinstance(names, list) else []
    return found[0] if found else None


def check_llm_folder(node: str, help_text: str, path: str) -> tuple[list[dict], list[str]]:
    """(configs, weight folders) of a prompt-LLM folder: a causal LM config, its tokenizer, some weights.

    Refuses a folder without a readable config.json, one of another kind of model (image-text models, BLIP...),
    one without its tokenizer, and one without any weights (pickle-only weights are refused by the caller)."""
    cfg = read_json(os.path.join(path, "config.json"))
    if cfg is None:
        raise ValueError(f'{node}: "model" folder {path} has no readable config.json, so it is not a transformers '
                         f"model folder (a broken or partial download?). {help_text}")
    if causal_lm_class(path) is None:
        raise ValueError(f'{node}: "model" folder {path} holds a {cfg.get("architectures") or cfg.get("model_type")} '
                         f"model, not a text-generation (...ForCausalLM) model. Pick an instruct LLM folder. "
                         f"{help_text}")
    names = set(os.listdir(path))
    if "tokenizer_config.json" not in names or not names & set(_TOKENIZER_FILES):
        raise ValueError(f'{node}: "model" folder {path} has no tokenizer (it needs tokenizer_config.json and '
                         f"tokenizer.json, or its vocabulary files): download the whole repository, not only the "
                         f"weights. {help_text}")
    if not any(n.endswith(_SAFE_WEIGHTS + _PICKLE_WEIGHTS) for n in names):
        raise ValueError(f'{node}: "model" folder {path} has no weights (.safetensors). Download them again. '
                         f"{help_text}")
    return [cfg], [path]
