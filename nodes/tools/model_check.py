"""``python -m nodes.cli --check``: which models are found where, and the ``hf download`` command for each missing
one. Standard library only (PyYAML if there, for ComfyUI's extra_model_paths.yaml); loads no model."""
from __future__ import annotations

import os
import shlex
import sys
import textwrap

from ..models import folders as model_folders

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the pack's folder

CHECK_MISSING = 3
_CHECKED = (  # kind, label, ComfyUI folder type, folder name and download command (README's), note
    (model_folders.BLIP, "BLIP caption model", "blip", "blip-image-captioning-large",
     "hf download Salesforce/blip-image-captioning-large --local-dir {dir}", ""),
    (model_folders.STABLE_AUDIO, "Stable Audio model", "diffusers", "stable-audio-open-1.0",
     "hf download stabilityai/stable-audio-open-1.0 --local-dir {dir}",
     "gated: accept its licence at https://huggingface.co/stabilityai/stable-audio-open-1.0, then `hf auth login`"),
)
_CLAP = (model_folders.CLAP, "CLAP model, optional (Rank Takes (CLAP))", "clap", "larger_clap_general",
         "hf download laion/larger_clap_general --revision refs/pr/1 --local-dir {dir}",
         "its safetensors weights are in the Hub's conversion pull request refs/pr/1")
_NATIVE = (  # optional single files for workflows/image_to_ambient_native.json (ComfyUI's own Stable Audio nodes)
    ("checkpoints", "stable-audio-open-1.0.safetensors",
     "hf download Comfy-Org/stable-audio-open-1.0_repackaged stable-audio-open-1.0.safetensors --local-dir {dir}"),
    ("text_encoders", "t5-base.safetensors", "hf download ComfyUI-Wiki/t5-base t5-base.safetensors --local-dir {dir}"),
)


def _extra_model_paths(comfy_root: str) -> tuple[dict[str, list[str]], str]:
    """Folders ``<comfy_root>/extra_model_paths.yaml`` adds, by folder type, read as ComfyUI reads it
    (``utils/extra_config.py``); and a note when it cannot be read."""
    path = os.path.join(comfy_root, "extra_model_paths.yaml")
    if not os.path.isfile(path):
        return {}, ""
    try:
        import yaml
    except ImportError:
        return {}, f"{path} not read: PyYAML is not installed here (ComfyUI's Python has it)"
    try:
        with open(path, encoding="utf-8") as f:
            config = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as err:
        return {}, f"{path} not read: {err}"
    found: dict[str, list[str]] = {}
    yaml_dir = os.path.dirname(os.path.abspath(path))
    for section in config.values() if isinstance(config, dict) else []:
        if not isinstance(section, dict):
            continue
        section = dict(section)
        base = section.pop("base_path", None)
        section.pop("is_default", None)
        if base:
            base = os.path.expandvars(os.path.expanduser(str(base)))
            base = base if os.path.isabs(base) else os.path.abspath(os.path.join(yaml_dir, base))
        for folder_type, value in section.items():
            for line in str(value or "").split("\n"):
                if not line:
                    continue
                full = os.path.join(base, line) if base else (
                    line if os.path.isabs(line) else os.path.abspath(os.path.join(yaml_dir, line)))
                found.setdefault(folder_type, []).append(os.path.normpath(full))
    return found, ""


def installed_comfyui() -> str | None:
    """The ComfyUI folder this pack sits in (``ComfyUI/custom_nodes/<pack>``), if it does."""
    root = os.path.dirname(os.path.dirname(ROOT))
    if os.path.basename(os.path.dirname(ROOT)) == "custom_nodes" and os.path.isdir(os.path.join(root, "models")):
        return root
    return None


def _download_target(given: str | None, roots: list[str], folder_type: str, name: str) -> str:
    """Where ``hf download`` should put a missing model: ``given`` itself when it names the model folder (as
    ``--blip`` does for a run), else ``<folder of model folders>/<name>``."""
    if given:
        given = os.path.abspath(given)
        is_parent = os.path.isdir(given) or os.path.basename(given) == folder_type
        return os.path.join(given, name) if is_parent else given
    return os.path.join(roots[0] if roots else os.path.join("ComfyUI", "models", folder_type), name)


def _folders(comfy_root: str | None, extra: dict[str, list[str]], folder_type: str, given: str | None) -> list[str]:
    """Where to look for one model type: the folder given on the command line, then ComfyUI's own and extra ones."""
    dirs = [os.path.abspath(given)] if given else []
    if comfy_root:
        dirs += [os.path.abspath(os.path.join(comfy_root, "models", folder_type)), *extra.get(folder_type, [])]
    return list(dict.fromkeys(dirs))


def _command(template: str, folder: str) -> str:
    return template.format(dir=shlex.quote(folder))


def _report_required(row: tuple, given: str | None, roots: list[str], out, required: bool = True) -> bool:
    """Print the model folders of one kind found (or broken: what is wrong and how to fix it) in ``roots``, or the
    download command when there is none; True when one is found."""
    kind, label, folder_type, name, download, why = row
    print(f"  {label} (ComfyUI/models/{folder_type}):", file=out)
    good = []
    for root in roots:
        for rel in model_folders.list_model_folders(kind, [root]):
            path = os.path.normpath(os.path.join(root, rel))
            try:
                model_folders.resolve_model_folder(kind, rel, [root])
            except ValueError as err:
                why_broken = textwrap.fill(str(err), 104, initial_indent=" " * 13, subsequent_indent=" " * 13,
                                           break_on_hyphens=False, break_long_words=False)
                print(f"    BROKEN   {path}\n{why_broken}", file=out)
                continue
            good.append(path)
            print(f"    found    {path}", file=out)
    if good:
        return True
    searched = ", ".join(roots) if roots else "nowhere: pass --comfyui DIR or --" + (
        "blip" if kind == model_folders.BLIP else "stable-audio") + " DIR"
    target = _download_target(given, roots, folder_type, name)
    print(f"    {'MISSING ' if required else 'absent  '} (searched {searched})", file=out)
    if why:
        print(f"    {why}:", file=out)
    print(f"      {_command(download, target)}", file=out)
    return False


def _report_native(comfy_root: str, extra: dict[str, list[str]], out) -> None:
    print("  Optional, for workflows/image_to_ambient_native.json (ComfyUI's own Stable Audio nodes):", file=out)
    for folder_type, filename, download in _NATIVE:
        roots = _folders(comfy_root, extra, folder_type, None) + (
            extra.get("clip", []) if folder_type == "text_encoders" else [])
        hit = next((os.path.join(r, filename) for r in roots if os.path.isfile(os.path.join(r, filename))), None)
        if hit:
            print(f"    found    {hit}", file=out)
        else:
            print(f"    absent   {filename} (in models/{folder_type}): {_command(download, roots[0])}", file=out)


def check_models(comfyui: str | None = None, blip: str | None = None, stable_audio: str | None = None,
                 out=None) -> int:
    """Print which models are found where, and the ``hf download`` command for each missing one.

    Args:
        comfyui: a ComfyUI folder (its models/ and extra_model_paths.yaml); default: the ComfyUI this pack is
            installed in, unless ``blip`` or ``stable_audio`` is given.
        blip, stable_audio: a model folder, or a folder of model folders, to search as well.
        out: where to print (default: stdout).

    Returns:
        0 when every required model is found, ``CHECK_MISSING`` (3) when one is missing or broken.
    """
    out = out or sys.stdout
    comfy_root = comfyui or (None if (blip or stable_audio) else installed_comfyui())
    extra, note = _extra_model_paths(comfy_root) if comfy_root else ({}, "")
    print("Models for Image to Ambient Audio" + (f" (ComfyUI: {os.path.abspath(comfy_root)})" if comfy_root else ""),
          file=out)
    if comfy_root and not os.path.isdir(os.path.join(comfy_root, "models")):
        print(f"  note: {os.path.abspath(comfy_root)} has no models/ folder: is it the ComfyUI folder?", file=out)
    if note:
        print(f"  note: {note}", file=out)
    missing = 0
    for row in _CHECKED:
        given = blip if row[0] == model_folders.BLIP else stable_audio
        missing += not _report_required(row, given, _folders(comfy_root, extra, row[2], given), out)
    if comfy_root:
        _report_required(_CLAP, None, _folders(comfy_root, extra, "clap", None), out, required=False)
        _report_native(comfy_root, extra, out)
    if missing:
        print(f"{missing} required model(s) missing. The `hf` command comes with: pip install -U "
              '"huggingface_hub[cli]". Then press R in ComfyUI (or restart) so the lists update.', file=out)
        return CHECK_MISSING
    print("All required models found.", file=out)
    return 0
