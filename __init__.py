"""Image to Ambient Audio: ComfyUI nodes that turn any image into a matching ambient soundscape."""
from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./web"  # ambient_wav_drop.js: drop a saved WAV on the canvas to restore its workflow
__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
