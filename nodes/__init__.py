"""The node registry: node id -> class and node id -> display name. Imports nothing heavy.

Node ids are permanent (saved workflows store them); ``tests/test_api.py`` holds the list, in this order.
"""
from .comfy import craft, generation, images, loaders, procedural, prompts, rank, rewrite, saving, spatial

_NODES = (  # (node id, class, display name)
    ("AmbientBlipLoader", loaders.AmbientBlipLoader, "Load BLIP Caption Model"),
    ("AmbientBlipCaption", generation.AmbientBlipCaption, "Caption Image (BLIP)"),
    ("AmbientPromptBuilder", prompts.AmbientPromptBuilder, "Build Ambient Prompt"),
    ("AmbientStableAudioLoader", loaders.AmbientStableAudioLoader, "Load Stable Audio Model"),
    ("AmbientStableAudioSampler", generation.AmbientStableAudioSampler, "Stable Audio Sampler"),
    ("AmbientSaveWav", saving.AmbientSaveWav, "Save WAV"),
    ("AmbientSeamlessLoop", craft.AmbientSeamlessLoop, "Make Seamless Loop"),
    ("AmbientFade", craft.AmbientFade, "Fade In / Out"),
    ("AmbientLoudness", craft.AmbientLoudness, "Normalize Loudness"),
    ("AmbientExtend", generation.AmbientExtend, "Extend Soundscape"),
    ("AmbientMix", craft.AmbientMix, "Mix Audio Layers"),
    ("AmbientSpectrogram", craft.AmbientSpectrogram, "Audio Spectrogram"),
    ("AmbientLayeredPromptBuilder", prompts.AmbientLayeredPromptBuilder, "Build Layered Ambient Prompts"),
    ("AmbientClapLoader", loaders.AmbientClapLoader, "Load CLAP Model"),
    ("AmbientRankTakes", rank.AmbientRankTakes, "Rank Takes (CLAP)"),
    ("AmbientVaryAudio", generation.AmbientVaryAudio, "Vary Audio (Stable Audio 3)"),
    ("AmbientLoadImage", images.AmbientLoadImage, "Load Image (or Example)"),
    ("AmbientLlmLoader", rewrite.AmbientLlmLoader, "Load Prompt LLM"),
    ("AmbientPromptRewriter", rewrite.AmbientPromptRewriter, "Rewrite Ambient Prompt (LLM)"),
    ("AmbientProceduralBed", procedural.AmbientProceduralBed, "Procedural Ambience"),
    ("AmbientProceduralScene", procedural.AmbientProceduralScene, "Procedural Scene from Prompt"),
    ("AmbientSpatialScene", spatial.AmbientSpatialScene, "Spatial Scene from Image"),
    ("AmbientSpatialEncode", spatial.AmbientSpatialEncode, "Spatial Encode (AmbiX)"),
    ("AmbientSpatialMix", spatial.AmbientSpatialMix, "Mix in Space (AmbiX)"),
    ("AmbientBinaural", spatial.AmbientBinaural, "Binaural from Ambisonics"),
)
NODE_CLASS_MAPPINGS = {node_id: cls for node_id, cls, _ in _NODES}
NODE_DISPLAY_NAME_MAPPINGS = {node_id: name for node_id, _, name in _NODES}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
