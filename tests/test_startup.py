"""Importing the pack (as ComfyUI does at start-up) loads no heavy library and does no work."""
import json
import subprocess
import sys
from pathlib import Path

from test_api import API

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ["torch", "transformers", "diffusers", "soundfile", "PIL", "numpy", "huggingface_hub", "folder_paths", "comfy"]

SCRIPT = f"""
import importlib.util, json, sys, threading, time
t = time.perf_counter()
spec = importlib.util.spec_from_file_location("pack_startup", {str(ROOT / "__init__.py")!r},
                                              submodule_search_locations=[{str(ROOT)!r}])
m = importlib.util.module_from_spec(spec); sys.modules["pack_startup"] = m; spec.loader.exec_module(m)
print(json.dumps({{"seconds": time.perf_counter() - t, "loaded": [h for h in {HEAVY!r} if h in sys.modules],
                  "nodes": len(m.NODE_CLASS_MAPPINGS), "threads": threading.active_count()}}))
"""


def test_import_is_light_and_fast():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, cwd="/")
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    assert report["nodes"] == len(API) and report["threads"] == 1
    assert report["seconds"] < 0.5
    assert out.stderr == ""


def test_no_absolute_import_of_nodes_inside_the_pack():
    for path in list((ROOT / "nodes").rglob("*.py")) + [ROOT / "__init__.py"]:
        text = path.read_text()
        assert "import nodes" not in text and "from nodes " not in text and "from nodes." not in text, path
