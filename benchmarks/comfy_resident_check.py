"""On a GPU with ComfyUI importable (PYTHONPATH=<ComfyUI>): memory="fast" keeps Stable Audio on the GPU between
runs through a registered ModelPatcher, ComfyUI can evict it (POST /free's unload_all_models, or free_memory for
another model), and the next run loads it again. Prints what it saw; exit 1 on a failed check.

    PYTHONPATH=/path/to/ComfyUI python benchmarks/comfy_resident_check.py
"""
import importlib
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
from pack_loader import load_pack_nodes  # noqa: E402


def main() -> int:
    import comfy.model_management as mm
    import torch

    load_pack_nodes()
    devices = importlib.import_module("ambient_nodes.models.devices")
    folders = importlib.import_module("ambient_nodes.models.folders")
    loading = importlib.import_module("ambient_nodes.models.loading")
    glue = importlib.import_module("ambient_nodes.comfy.glue")
    soundscape = importlib.import_module("ambient_nodes.generate.soundscape")
    demo = importlib.import_module("ambient_nodes.tools.demo_models")
    loading.quiet_libraries()
    root = tempfile.mkdtemp()
    with torch.device("cuda"):
        demo.build_tiny_stable_audio(os.path.join(root, "sao"), sample_size=1024, size="open-1.0")
    torch.cuda.empty_cache()
    plan = glue.device_plan(folders.STABLE_AUDIO)
    print("plan:", plan.load_device, plan.offload_device, plan.auto_dtype, "vram_state:", mm.vram_state)
    handle = folders.make_handle(folders.STABLE_AUDIO, "sao", [root], "auto", plan)
    ok = True

    def run(memory):
        t = time.perf_counter()
        with devices.stable_audio_session(handle, plan, memory, node="benchmark") as (pipe, stage):
            soundscape.generate_soundscape(pipe, "rain", seconds=10.0, steps=20, seed=0, stage=stage)
        torch.cuda.synchronize()
        return pipe, time.perf_counter() - t

    def where(pipe):
        return {n: str(next(getattr(pipe, n).parameters()).device) for n in devices.sa_parts(pipe)}

    for label in ("fast #1", "fast #2"):
        pipe, s = run("fast")
        print(f"{label}: {s:.2f} s, parts {where(pipe)}, VRAM {torch.cuda.memory_allocated() / 2**30:.2f} GiB, "
              f"ComfyUI loaded models {len(mm.current_loaded_models)}")
    ok &= where(pipe)["transformer"].startswith("cuda")
    mm.unload_all_models()  # what POST /free {"unload_models": true} does
    mm.soft_empty_cache()
    print(f"after unload_all_models: parts {where(pipe)}, VRAM {torch.cuda.memory_allocated() / 2**30:.2f} GiB")
    ok &= where(pipe)["transformer"] == "cpu"
    pipe, s = run("fast")
    print(f"fast #3 (reloaded): {s:.2f} s, parts {where(pipe)}")
    ok &= where(pipe)["transformer"].startswith("cuda")
    mm.free_memory(1e30, mm.get_torch_device())  # another model asks for all the room
    print(f"after free_memory for another model: parts {where(pipe)}")
    ok &= where(pipe)["transformer"] == "cpu"
    pipe, s = run("balanced")
    print(f"balanced: {s:.2f} s, parts after {where(pipe)}, VRAM {torch.cuda.memory_allocated() / 2**30:.2f} GiB")
    ok &= where(pipe)["transformer"] == "cpu"
    print("RESIDENT CHECK:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
