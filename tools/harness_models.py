"""Build tiny random models named like the real ones, for running the example workflows in a real ComfyUI.

    python tools/harness_models.py /tmp/ambient_models   # writes models/ + extra_model_paths.yaml there
    python tools/harness_models.py /tmp/ambient_models --sa3 small   # the SA3 workflows then run a tiny Small

Then: ``python ../shared/harness/comfy_harness.py accept --pack . --models-config /tmp/ambient_models/extra_model_paths.yaml
--input assets/example_beach.jpg --browser``. The models are random (noise, random words): this checks the
plumbing in ComfyUI, not the sound.
"""
import os

from pack_loader import load_pack_nodes

# The folder names the example workflows use (what `hf download ... --local-dir` creates in the README).
BLIP_NAME = "blip-image-captioning-large"
STABLE_AUDIO_NAME = "stable-audio-open-1.0"
STABLE_AUDIO3_NAME = "stable-audio-3-medium"  # what `python -m nodes.cli convert-sa3` writes in the README
CLAP_NAME = "larger_clap_general"


def main(target: str, sa3: str = "medium") -> None:
    """``sa3``: which tiny Stable Audio 3 sits in the folder the SA3 workflows name: "medium" (the Medium family's
    SAME-L-width autoencoder, 380 s) or "small" (a tiny SAME-S: chunked attention, kernel-3 decoder mapping, 120 s)."""
    import importlib

    load_pack_nodes()
    build_demo_models = importlib.import_module("ambient_nodes.tools.demo_models").build_demo_models
    models_dir = os.path.join(os.path.abspath(target), "models")
    # 960 latents x 2048 / 44100 Hz = 44.6 s: long enough for the workflows' settings
    build_demo_models(models_dir, blip_name=BLIP_NAME, stable_audio_name=STABLE_AUDIO_NAME, sample_size=960)
    demo = importlib.import_module("ambient_nodes.tools.demo_models")
    import diffusers

    if hasattr(diffusers, "StableAudio3Pipeline"):  # tiny, with the Medium family's autoencoder width (380 s)
        demo.build_tiny_stable_audio3(os.path.join(models_dir, "diffusers", STABLE_AUDIO3_NAME),
                                      size={"medium": "tiny-medium", "small": "tiny"}[sa3])
    demo.build_tiny_clap(os.path.join(models_dir, "clap", CLAP_NAME))
    yaml_path = os.path.join(os.path.abspath(target), "extra_model_paths.yaml")
    with open(yaml_path, "w", encoding="utf-8") as f:
        f.write(f"ambient_test_models:\n    base_path: {models_dir}\n    blip: blip/\n    diffusers: diffusers/\n"
                "    clap: clap/\n")
    print(yaml_path)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", nargs="?", default="/tmp/ambient_models")
    parser.add_argument("--sa3", choices=("medium", "small"), default="medium")
    cli = parser.parse_args()
    main(cli.target, cli.sa3)
