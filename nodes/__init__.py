"""The node registry: node id -> class and node id -> display name. Imports nothing heavy.

Node ids are permanent (saved workflows store them); ``tests/test_api.py`` holds the list.
"""
from .comfy.core import NODE_CLASSES as _CORE
from .comfy.craft import NODE_CLASSES as _CRAFT
from .comfy.rank import NODE_CLASSES as _RANK
from .comfy.vary import NODE_CLASSES as _SA3

_ALL = {**_CORE, **_CRAFT, **_RANK, **_SA3}
NODE_CLASS_MAPPINGS = {node_id: cls for node_id, (cls, _) in _ALL.items()}
NODE_DISPLAY_NAME_MAPPINGS = {node_id: name for node_id, (_, name) in _ALL.items()}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
