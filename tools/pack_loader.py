"""Load the pack's ``nodes`` package by path under its own name, ``ambient_nodes``, for scripts run from a checkout
(tools, benchmarks): never ComfyUI's top-level ``nodes`` module, whatever is on ``sys.path``."""
import importlib.util
import os
import sys


def load_pack_nodes():
    """Import ``<repo>/nodes`` as ``ambient_nodes`` (once) and return it; submodules follow as
    ``ambient_nodes.models.loading`` etc."""
    if "ambient_nodes" in sys.modules:
        return sys.modules["ambient_nodes"]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location("ambient_nodes", os.path.join(root, "nodes", "__init__.py"),
                                                  submodule_search_locations=[os.path.join(root, "nodes")])
    module = importlib.util.module_from_spec(spec)
    sys.modules["ambient_nodes"] = module
    spec.loader.exec_module(module)
    return module
