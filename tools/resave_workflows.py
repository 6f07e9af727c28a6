"""Re-save workflows/*.json through the real ComfyUI frontend: every current input gets a saved value, the layout fits
a 1600x1000 canvas at a zoom where the frontend draws text, and each file opens at a readable zoom (``VIEW``).

    python3 ../shared/harness/comfy_harness.py start --pack . --isolate -- --extra-model-paths-config models.yaml
    $HARNESS_HOME/venv/bin/python tools/resave_workflows.py --url http://127.0.0.1:8188 [--thumbs]

Values for inputs a workflow lacks are filled in here (``APPENDED``: the node's default, seeds fixed), then each file
is loaded in the page and written back from ``app.graph.serialize()``, as the frontend saves it. ``--thumbs`` also
retakes the .jpg thumbnails (the Templates dialog shows them) from a screenshot at the saved view.
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HARNESS = os.path.join(os.path.dirname(ROOT), "shared", "harness")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workflow_builder import VIEW  # noqa: E402

# Trailing inputs added to a node after workflows were saved with it, with the value to store when a file lacks them.
APPENDED = {"AmbientSaveWav": [("metadata", True)],
            "AmbientStableAudioSampler": [("memory", "balanced"), ("compile", False)],
            "AmbientSeamlessLoop": [("method", "auto"), ("seed", 0), ("seed.control", "fixed"), ("joint_seconds", 4.0)]}
WIDGET_COUNT = {"AmbientSaveWav": 4, "AmbientStableAudioSampler": 10, "AmbientSeamlessLoop": 6}
# Compact layouts (x, y, width, height[, new group title]): four columns after the note, 1920 wide, at most 1230 high.
LAYOUTS = {
    "layered_scene.json": {
        "nodes": {1: (480, 110, 290, 400), 2: (480, 640, 290, 82), 5: (480, 780, 290, 82), 3: (810, 110, 330, 170),
                  4: (810, 330, 330, 260), 6: (1180, 110, 340, 340), 7: (1180, 490, 340, 340),
                  8: (1180, 870, 340, 340), 9: (1560, 110, 340, 380), 10: (1560, 530, 340, 150),
                  11: (1560, 720, 340, 230)},
        "groups": {"Image": (460, 40, 330, 510), "Models": (460, 570, 330, 310), "Prompts": (790, 40, 370, 580),
                   "Bed and sources": (1160, 40, 380, 1190), "Mix and save": (1540, 40, 380, 930)}},
    "seamless_loop.json": {
        "nodes": {1: (480, 110, 290, 400), 2: (480, 640, 290, 82), 5: (480, 780, 290, 82), 3: (810, 110, 330, 170),
                  4: (810, 330, 330, 200), 6: (1180, 110, 340, 440), 7: (1560, 110, 340, 240),
                  8: (1560, 400, 340, 120), 9: (1560, 560, 340, 190), 10: (1560, 800, 340, 100),
                  11: (1560, 950, 340, 230)},
        "groups": {"Image": (460, 40, 330, 510), "Models": (460, 570, 330, 310), "Prompt": (790, 40, 370, 520),
                   "Audio": (1160, 40, 380, 540), "Loop, loudness, save": (1540, 40, 380, 1160)}},
    "image_to_ambient_native.json": {
        "nodes": {1: (480, 110, 290, 400), 2: (480, 640, 290, 82), 5: (480, 760, 290, 100), 6: (480, 900, 290, 110),
                  3: (810, 110, 330, 170), 4: (810, 330, 330, 200), 7: (810, 580, 330, 88), 8: (810, 690, 330, 88),
                  9: (1180, 110, 340, 130), 10: (1180, 280, 340, 82), 11: (1180, 400, 340, 262),
                  12: (1180, 700, 340, 46), 13: (1560, 110, 340, 130), 14: (1560, 280, 340, 130),
                  15: (1560, 450, 340, 250)},
        "groups": {"Image": (460, 40, 330, 510), "Models": (460, 570, 330, 460), "Prompt": (790, 40, 370, 740),
                   "Audio (ComfyUI's Stable Audio nodes)": (1160, 40, 380, 740, "Audio (ComfyUI's nodes)"),
                   "Loudness, fades, save": (1540, 40, 380, 700)}},
}


def fill_and_lay_out(name: str, wf: dict) -> None:
    """Append the values a node lacks (in input order), move nodes and groups to the layout, set the saved view."""
    for node in wf["nodes"]:
        values = node.get("widgets_values")
        extra = APPENDED.get(node["type"], [])
        missing = WIDGET_COUNT.get(node["type"], 0) - len(values or [])
        if missing > 0:
            values.extend(value for _, value in extra[-missing:])
    layout = LAYOUTS.get(name, {"nodes": {}, "groups": {}})
    for node in wf["nodes"]:
        if node["id"] in layout["nodes"]:
            x, y, w, h = layout["nodes"][node["id"]]
            node["pos"], node["size"] = [x, y], [w, h]
    for group in wf["groups"]:
        if group["title"] in layout["groups"]:
            x, y, w, h, *title = layout["groups"][group["title"]]
            group["bounding"], group["title"] = [x, y, w, h], (title or [group["title"]])[0]
    wf.setdefault("extra", {})["ds"] = json.loads(json.dumps(VIEW))


def resave(url: str, paths: list, thumbs: bool, shots=None) -> None:
    sys.path.insert(0, HARNESS)
    from comfy_browser import Browser  # the harness's Playwright driver

    with Browser(url) as b:
        b.open_comfy()
        for path in paths:
            name = os.path.basename(path)
            with open(path, encoding="utf-8") as f:
                wf = json.load(f)
            fill_and_lay_out(name, wf)
            missing = b.load(wf, name)
            if missing:
                sys.exit(f"{name}: missing node types {missing}")
            # the frontend's own save: graph.serialize(), JSON round trip (undefined fields would come back null)
            saved = b.page.evaluate("""(ds) => { const c = window.app.canvas; c.ds.scale = ds.scale;
                c.ds.offset = ds.offset; c.setDirty(true, true);
                return JSON.parse(JSON.stringify(window.app.graph.serialize())) }""", VIEW)
            saved.setdefault("extra", {})["ds"] = json.loads(json.dumps(VIEW))
            with open(path, "w", encoding="utf-8") as f:
                f.write(json.dumps(saved, indent=1, ensure_ascii=False) + "\n")
            print(f"wrote {path}")
            if thumbs:
                thumbnail(b, saved, os.path.splitext(path)[0] + ".jpg", shots)


def graph_bounds(wf: dict) -> tuple:
    """(left, top, right, bottom) of the nodes (with their 30 px title bars) and groups, in graph units."""
    boxes = [(n["pos"][0], n["pos"][1] - 30, n["pos"][0] + n["size"][0], n["pos"][1] + n["size"][1])
             for n in wf["nodes"]]
    boxes += [(x, y, x + w, y + h) for x, y, w, h in (g["bounding"] for g in wf["groups"])]
    return tuple(f(box[k] for box in boxes) for k, f in enumerate((min, min, max, max)))


def thumbnail(b, wf: dict, jpg: str, shots) -> None:
    """The graph as it opens (saved view), without the minimap and canvas info, cropped to the graph, 640 wide."""
    from PIL import Image

    b.page.evaluate("""async () => { const s = window.app.extensionManager.setting;
        await s.set('Comfy.Minimap.Visible', false); await s.set('Comfy.Graph.CanvasInfo', false);
        window.app.graph.setDirtyCanvas(true, true) }""")
    b.page.wait_for_timeout(800)
    png = os.path.join(shots or os.path.dirname(jpg), os.path.basename(jpg)[:-4] + ".png")
    b.page.screenshot(path=png)
    x0, y0, x1, y1 = graph_bounds(wf)
    scale, (ox, oy) = VIEW["scale"], VIEW["offset"]
    left, top, right, bottom = ((x0 + ox) * scale, (y0 + oy) * scale, (x1 + ox) * scale, (y1 + oy) * scale)
    im = Image.open(png).convert("RGB")
    w, h = im.size
    im = im.crop((max(0, int(left) - 8), max(0, int(top) - 8), min(w, int(right) + 8), min(h, int(bottom) + 8)))
    im = im.resize((640, round(640 * im.size[1] / im.size[0])), Image.LANCZOS)
    im.save(jpg, quality=88)
    if not shots:
        os.remove(png)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--url", default="http://127.0.0.1:8188", help="a running ComfyUI with this pack")
    p.add_argument("--thumbs", action="store_true", help="also retake the .jpg thumbnails")
    p.add_argument("--shots", help="keep the full screenshots (PNG) in this folder")
    p.add_argument("workflows", nargs="*", help="default: every workflows/*.json")
    a = p.parse_args()
    paths = a.workflows or sorted(os.path.join(ROOT, "workflows", n) for n in os.listdir(os.path.join(ROOT, "workflows"))
                                  if n.endswith(".json"))
    resave(a.url, paths, a.thumbs, a.shots)


if __name__ == "__main__":
    main()
