"""Pictures for the README: a loop's joint before and after Make Seamless Loop (docs/loop_joint.png).

    python tools/make_docs_pictures.py

Audio from the tiny random Stable Audio model (the real pipeline, random weights), so the texture is noise; what
the picture shows is the joint: the raw clip repeated clicks (a vertical line through every frequency), the loop
does not.
"""
import importlib
import os
import sys
import tempfile

from pack_loader import load_pack_nodes


def main(out_path: str) -> None:
    import torch
    from PIL import Image, ImageDraw

    load_pack_nodes()
    demo = importlib.import_module("ambient_nodes.tools.demo_models")
    devices = importlib.import_module("ambient_nodes.models.devices")
    folders = importlib.import_module("ambient_nodes.models.folders")
    loading = importlib.import_module("ambient_nodes.models.loading")
    soundscape = importlib.import_module("ambient_nodes.generate.soundscape")
    loop = importlib.import_module("ambient_nodes.audio.loop")
    spectrogram = importlib.import_module("ambient_nodes.audio.spectrogram")
    loading.quiet_libraries()
    tmp = tempfile.mkdtemp(prefix="docs_pictures_")
    demo.build_tiny_stable_audio(os.path.join(tmp, "sa"), sample_size=448)
    pipe = loading.load(folders.make_handle(folders.STABLE_AUDIO, "sa", [tmp], "fp32", devices.DevicePlan()))
    clip, rate = soundscape.generate_soundscape(pipe, "rain", seconds=12.0, steps=8, seed=3)
    # a slow swell, as real ambience has, so the clip's end and start differ in level
    clip = clip * torch.linspace(0.4, 1.0, clip.shape[-1])
    looped, _ = loop.make_seamless_loop(clip, rate, 2.0)
    half = int(1.5 * rate)
    panels = []
    for title, x in (("before: the clip played twice (click and level jump at the joint, centre)", clip[0]),
                     ("after Make Seamless Loop (2 s equal-power cross-fade): no joint to see", looped[0])):
        window = torch.cat([x[:, -half:], x[:, :half]], dim=-1)
        panels.append(spectrogram.render_spectrogram(window, rate, width=900, height=300, title=title))
    sheet = Image.new("RGB", (900, 610), (16, 16, 16))
    sheet.paste(panels[0], (0, 0))
    sheet.paste(panels[1], (0, 310))
    ImageDraw.Draw(sheet).line([(450, 0), (450, 6)], fill=(255, 255, 255))
    sheet.save(out_path)
    print(out_path)


if __name__ == "__main__":
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "docs", "loop_joint.png"))
