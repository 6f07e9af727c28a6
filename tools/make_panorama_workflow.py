"""Write workflows/panorama_to_ambix.json: an equirectangular picture -> Spatial Scene from Image (regions captioned
by BLIP) -> a bed and one Stable Audio take per region source -> encode (bed diffuse, sources at their azimuths) ->
Mix in Space -> Make Seamless Loop -> 4-channel AmbiX WAV, plus a binaural preview.

    python tools/make_panorama_workflow.py
"""
import os

from workflow_builder import Workflow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NEGATIVE = "music, melody, vocals, speech, distortion, low quality"
NOTE = """## 360° picture → sound all around you (AmbiX) and a binaural preview
Put an **equirectangular panorama** (2:1) in Load Image (or Example), or any wide photo with layout *wide picture*.
**Spatial Scene from Image** captions each region (BLIP) and plans one source per direction (the same sound seen in
several regions is kept once, between them) plus a whole-picture bed → **Stable Audio Sampler** makes the bed and one
take per source (the list runs once per prompt) → **Spatial Encode (AmbiX)**: the bed diffuse, each source at its
azimuth → **Mix in Space (AmbiX)** → **Make Seamless Loop** (all 4 channels cut alike) → **Save WAV**: a 4-channel
AmbiX file (ACN/SN3D) for Unity, Unreal, Wwise, FMOD or 360° video; **Binaural from Ambisonics** → a headphone
preview. *Preview as Text* shows the plan: which sound comes from where.

### Models (once; then press R)
```
ComfyUI/models/
├── blip/blip-image-captioning-large/
└── diffusers/stable-audio-open-1.0/
```
```
hf download Salesforce/blip-image-captioning-large --local-dir ComfyUI/models/blip/blip-image-captioning-large
hf download stabilityai/stable-audio-open-1.0 --local-dir ComfyUI/models/diffusers/stable-audio-open-1.0
```

### Time
One Stable Audio run per source plus the bed (4 regions: up to 5 runs of 20 s each); the spatial nodes take a few
seconds on the CPU."""


def main() -> None:
    wf = Workflow()
    image = wf.add("AmbientLoadImage", (480, 110), (290, 300), ["example_beach.jpg", "image"])
    blip = wf.add("AmbientBlipLoader", (480, 460), (290, 106), ["blip-image-captioning-large", "auto"])
    sa = wf.add("AmbientStableAudioLoader", (480, 600), (290, 106), ["stable-audio-open-1.0", "auto"])
    scene = wf.add("AmbientSpatialScene", (480, 740), (290, 170), ["panorama 360", 4])
    bed = wf.add("AmbientStableAudioSampler", (810, 110), (330, 420),
                 ["", NEGATIVE, 20, 0, 0, 42, "fixed", 1, "balanced", False], title="Bed")
    sources = wf.add("AmbientStableAudioSampler", (810, 570), (330, 420),
                     ["", NEGATIVE, 20, 0, 0, 7, "fixed", 1, "balanced", False], title="Sources (one per region)")
    enc_bed = wf.add("AmbientSpatialEncode", (1180, 110), (340, 250), [0, 0, 0, 1, 60, True],
                     title="Encode bed (diffuse)")
    enc_src = wf.add("AmbientSpatialEncode", (1180, 400), (340, 250), [0, 0, 60, 2, 60, False],
                     title="Encode sources")
    mix = wf.add("AmbientSpatialMix", (1180, 690), (340, 150), [-3, 0, 0] + [-3] * 6,
                 skip_unlinked=tuple(f"audio_{k}" for k in range(3, 9)))
    plan = wf.add("PreviewAny", (1180, 880), (340, 250), [], title="Spatial plan")
    loop = wf.add("AmbientSeamlessLoop", (1560, 110), (340, 200), [2, 0, "auto", 0, "fixed", 4.0],
                  skip_unlinked=("model", "prompt"))
    save = wf.add("AmbientSaveWav", (1560, 350), (340, 230), ["ambient/panorama_ambix", "24", "auto", True],
                  title="Save AmbiX WAV")
    ears = wf.add("AmbientBinaural", (1560, 620), (340, 110), [0, "binaural"])
    preview = wf.add("AmbientSaveWav", (1560, 770), (340, 230), ["ambient/panorama_binaural", "16", "auto", True],
                     title="Save binaural preview")
    note = wf.add("MarkdownNote", (0, 40), (440, 900), [NOTE], title="Read me")
    assert note and preview
    wf.link(image, "IMAGE", scene, "image")
    wf.link(blip, "blip_model", scene, "blip_model")
    wf.link(scene, "plan", plan, "source")
    wf.link(sa, "model", bed, "model")
    wf.link(scene, "bed", bed, "prompt")
    wf.link(sa, "model", sources, "model")
    wf.link(scene, "prompts", sources, "prompt")
    wf.link(bed, "audio", enc_bed, "audio")
    wf.link(sources, "audio", enc_src, "audio")
    wf.link(scene, "azimuths", enc_src, "azimuth")
    wf.link(scene, "widths", enc_src, "width")
    wf.link(enc_bed, "audio", mix, "audio_1")
    wf.link(enc_src, "audio", mix, "audio_2")
    wf.link(mix, "audio", loop, "audio")
    wf.link(loop, "audio", save, "audio")
    wf.link(loop, "audio", ears, "audio")
    wf.link(ears, "audio", preview, "audio")
    wf.group("Picture, models, scene", (460, 40, 330, 900), "#3f789e")
    wf.group("Bed and sources", (790, 40, 370, 970), "#a1309b")
    wf.group("Place in space", (1160, 40, 380, 1110), "#8A8")
    wf.group("Loop, save, listen", (1540, 40, 380, 980), "#88A")
    wf.save(os.path.join(ROOT, "workflows", "panorama_to_ambix.json"))


if __name__ == "__main__":
    main()
