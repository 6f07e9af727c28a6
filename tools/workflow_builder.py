"""Write a UI-format ComfyUI workflow (what the frontend saves and loads) from a compact description.

Inputs and outputs of the pack's nodes come from their INPUT_TYPES / RETURN_TYPES, so a workflow made here always
matches the nodes as they are; core nodes used by the examples are described below. Used to make
``workflows/*.json``; the result is checked by tests/test_workflows.py and run by the harness.

    from workflow_builder import Workflow
    wf = Workflow()
    a = wf.add("AmbientLoadImage", (480, 110), (310, 400), ["example_beach.jpg", "image"])
    ...
    wf.link(a, "IMAGE", b, "image")
    wf.save("workflows/x.json")
"""
import json
import os
import sys

from pack_loader import load_pack_nodes

try:  # the loaders list model folders through ComfyUI's folder_paths: outside ComfyUI use the tests' stand-in
    import folder_paths  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests",
                                    "comfy_stub"))

WIDGET_TYPES = ("STRING", "INT", "FLOAT", "BOOLEAN")
UI_WIDGETS = ("AUDIO_UI",)
# The view a workflow opens at: 75 % zoom (the frontend draws no text below 8 px, about 57 %), the note's top left
# clear of the frontend's side bar and top bar.
VIEW = {"scale": 0.75, "offset": [95, 120]}  # frontend-only widgets: an input entry, no saved value
# core nodes the example workflows use, as (type, inputs (name, type, is_widget, is_optional), outputs (name, type,
# is_list)) rows (a list, not a mapping: this file registers no nodes)
CORE_ROWS = [
    ("LoadImage", [("image", "COMBO", True, False), ("upload", "IMAGEUPLOAD", True, False)],
     [("IMAGE", "IMAGE", False), ("MASK", "MASK", False)]),
    ("MarkdownNote", [], []),
    ("PreviewAny", [("source", "*", False, False)], []),
    ("PreviewImage", [("images", "IMAGE", False, False)], []),
]


class Workflow:
    def __init__(self):
        self.pack = load_pack_nodes()
        self.nodes, self.links, self.groups = [], [], []

    def _spec(self, node_type):
        for core_type, inputs, outputs in CORE_ROWS:
            if core_type == node_type:
                return inputs, outputs
        cls = self.pack.NODE_CLASS_MAPPINGS[node_type]
        spec = cls.INPUT_TYPES()
        inputs = []
        optional = set(spec.get("optional", {}))
        for name, (kind, opts) in {**spec["required"], **spec.get("optional", {})}.items():
            widget = isinstance(kind, list) or (kind in WIDGET_TYPES + UI_WIDGETS and not opts.get("forceInput"))
            inputs.append((name, "COMBO" if isinstance(kind, list) else kind, widget, name in optional))
            if opts.get("image_upload"):  # the frontend adds its upload button as a widget after the combo
                inputs.append(("upload", "IMAGEUPLOAD", True, False))
        lists = getattr(cls, "OUTPUT_IS_LIST", (False,) * len(cls.RETURN_TYPES))
        names = getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES)
        return inputs, list(zip(names, cls.RETURN_TYPES, lists))

    def add(self, node_type, pos, size, widgets=None, title=None, skip_unlinked=()):
        """Add a node; ``widgets`` are its widget values in order. Optional link-only inputs named in
        ``skip_unlinked`` are left off the node (the frontend adds them when they are connected)."""
        inputs, outputs = self._spec(node_type)
        node = {"id": len(self.nodes) + 1, "type": node_type, "pos": list(pos), "size": list(size), "flags": {},
                "order": len(self.nodes), "mode": 0, "inputs": [], "outputs": []}
        for name, kind, widget, optional in inputs:
            if name in skip_unlinked:
                continue
            entry = {"localized_name": name, "name": name, "type": kind, "link": None}
            if optional:
                entry["shape"] = 7
            if widget:
                entry["widget"] = {"name": name}
            node["inputs"].append(entry)
        for name, kind, is_list in outputs:
            out = {"localized_name": name, "name": name, "type": kind, "links": None}
            if is_list:
                out["shape"] = 6
            node["outputs"].append(out)
        if title:
            node["title"] = title
        node["properties"] = {} if node_type == "MarkdownNote" else {"Node name for S&R": node_type}
        node["widgets_values"] = list(widgets or [])
        self.nodes.append(node)
        return node["id"]

    def link(self, src, output, dst, input_name):
        s, d = self.nodes[src - 1], self.nodes[dst - 1]
        slot = [o["name"] for o in s["outputs"]].index(output)
        dslot = [i["name"] for i in d["inputs"]].index(input_name)
        link_id = len(self.links) + 1
        kind = s["outputs"][slot]["type"]
        s["outputs"][slot]["links"] = (s["outputs"][slot]["links"] or []) + [link_id]
        d["inputs"][dslot]["link"] = link_id
        self.links.append([link_id, src, slot, dst, dslot, kind])
        return link_id

    def group(self, title, bounding, color):
        self.groups.append({"id": len(self.groups) + 1, "title": title, "bounding": list(bounding), "color": color,
                            "font_size": 24, "flags": {}})

    def save(self, path):
        wf = {"id": "00000000-0000-0000-0000-000000000000", "revision": 0, "last_node_id": len(self.nodes),
              "last_link_id": len(self.links), "nodes": self.nodes, "links": self.links, "groups": self.groups,
              "config": {}, "extra": {"ds": json.loads(json.dumps(VIEW))}, "version": 0.4}
        with open(path, "w", encoding="utf-8") as f:
            f.write(json.dumps(wf, indent=1, ensure_ascii=False) + "\n")
