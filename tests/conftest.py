"""Load the pack the way ComfyUI does, offline, with ComfyUI's modules real or stood in.

- HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE are set before anything imports huggingface_hub.
- ComfyUI's ``folder_paths`` and ``comfy.*``: the real ones when ComfyUI is importable, else ``tests/comfy_stub``.
- The pack is imported from its ``__init__.py`` under a fixed package name (as ComfyUI imports
  ``custom_nodes/<folder>``), so relative imports resolve exactly as in ComfyUI.
"""
import importlib.util
import os
import sys
import warnings
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PACK_NAME = "ambient_pack_under_test"

if importlib.util.find_spec("folder_paths") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parent / "comfy_stub"))


def _load_pack():
    if PACK_NAME in sys.modules:
        return sys.modules[PACK_NAME]
    spec = importlib.util.spec_from_file_location(PACK_NAME, ROOT / "__init__.py",
                                                  submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACK_NAME] = module
    spec.loader.exec_module(module)
    return module


pack = _load_pack()


def _has_sa3() -> bool:
    try:
        import diffusers
    except ImportError:
        return False
    return hasattr(diffusers, "StableAudio3Pipeline")


HAS_SA3 = _has_sa3()
needs_sa3 = pytest.mark.skipif(not HAS_SA3, reason="this diffusers has no StableAudio3Pipeline (0.42+)")
# the two model families the sampling nodes are tested on
FAMILIES = ["open", pytest.param("sa3", marks=needs_sa3)]


def pack_module(name: str):
    """A submodule of the pack under test, e.g. ``pack_module("audio.wav")``."""
    return importlib.import_module(f"{PACK_NAME}.nodes.{name}")


def run_node(node_id: str, /, **inputs):
    """Run one node as ComfyUI runs it from a queued prompt: an instance of its class, then its ``FUNCTION`` with
    the inputs as keywords; returns what the node returns.

    As in ComfyUI, every input is passed by name and must be one the node declares in ``INPUT_TYPES`` (required,
    optional or hidden); a required input left out gets its declared default, the value a node freshly added in
    the frontend sends (one with no default must be given). ``VALIDATE_INPUTS`` is not called: a test of the check
    ComfyUI makes when a prompt is queued calls it itself."""
    cls = pack.NODE_CLASS_MAPPINGS[node_id]
    spec = cls.INPUT_TYPES()
    declared = [name for part in ("required", "optional", "hidden") for name in spec.get(part, {})]
    unknown = [name for name in inputs if name not in declared]
    assert not unknown, f"{node_id} has no input {unknown}; its inputs: {declared}"
    for name, (_, *options) in spec.get("required", {}).items():
        if name not in inputs:
            assert options and "default" in options[0], f"{node_id}: give the required input {name!r}"
            inputs[name] = options[0]["default"]
    return getattr(cls(), cls.FUNCTION)(**inputs)


@pytest.fixture(scope="session")
def comfy_models(tmp_path_factory):
    """A ComfyUI-like base folder with tiny random BLIP and Stable Audio models built and saved into
    ``models/blip/`` and ``models/diffusers/``; ``folder_paths`` points at it."""
    import folder_paths

    warnings.filterwarnings("ignore", module="torchsde")
    base = tmp_path_factory.mktemp("comfy_base")
    demo = pack_module("tools.demo_models")
    blip, sa = demo.build_demo_models(str(base / "models"))
    sa3 = None
    if HAS_SA3:  # diffusers 0.42+: a tiny Stable Audio 3 beside the Open one, so node tests run on both families
        sa3 = demo.build_tiny_stable_audio3(str(base / "models" / "diffusers" / demo.STABLE_AUDIO3_NAME))
    if hasattr(folder_paths, "set_base"):
        folder_paths.set_base(str(base))
    else:  # the real ComfyUI
        folder_paths.add_model_folder_path("diffusers", str(base / "models" / "diffusers"), is_default=True)
        folder_paths.add_model_folder_path("blip", str(base / "models" / "blip"), is_default=True)
        folder_paths.set_output_directory(str(base / "output"))
    return {"base": base, "blip": blip, "stable_audio": sa, "blip_name": demo.BLIP_NAME,
            "stable_audio_name": demo.STABLE_AUDIO_NAME, "stable_audio3": sa3,
            "stable_audio3_name": demo.STABLE_AUDIO3_NAME if sa3 else None}


@pytest.fixture
def output_dir(comfy_models, tmp_path):
    """A fresh, empty ComfyUI output folder for one test."""
    import folder_paths

    out = tmp_path / "output"
    out.mkdir()
    if hasattr(folder_paths, "set_base"):
        folder_paths.output_directory = str(out)
    else:
        folder_paths.set_output_directory(str(out))
    return out


@pytest.fixture
def interrupt_after():
    """``interrupt_after(n)``: install ComfyUI-like progress hook that presses Cancel at the n-th tick."""
    import comfy.model_management as mm
    import comfy.utils

    ticks = []
    saved = comfy.utils.PROGRESS_BAR_HOOK

    def install(n):
        def hook(value, total, preview, node_id=None):
            ticks.append((value, total))
            if len(ticks) == n:
                mm.interrupt_current_processing(True)
            mm.throw_exception_if_processing_interrupted()  # what ComfyUI's own hook does (main.py)
        comfy.utils.PROGRESS_BAR_HOOK = hook
        return ticks

    yield install
    comfy.utils.PROGRESS_BAR_HOOK = saved
    mm.interrupt_current_processing(False)


RUN_DEVICE = "cpu:0"  # stands in for the GPU: a distinct device name, so the moves happen and are logged


@pytest.fixture
def plans(monkeypatch):
    """Every device plan the nodes ask for, with ComfyUI's device read as :data:`RUN_DEVICE` (``cpu:0``) so the
    moves between devices really happen (and the recording plans log them)."""
    glue = pack_module("comfy.glue")
    made = []
    real = glue.device_plan

    def recording_plan(kind):
        plan = real(kind)
        plan.load_device = RUN_DEVICE
        made.append(plan)
        return plan

    monkeypatch.setattr(glue, "device_plan", recording_plan)
    return made
