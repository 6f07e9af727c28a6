"""The one table of Stable Audio model families: what each is, needs and can do (stdlib only, no torch).

Every fact about a family lives in :data:`FAMILIES`: the diffusers pipeline class a folder names in its
``model_index.json``, the oldest diffusers that has it, the longest clip, the default steps and guidance, the
prompt's token limit, whether it can inpaint (and so continue and loop), whether compiling pays off, the VAE decode
chunk per memory mode, and, for a family the pack refuses, why. :func:`family_of` finds the record of a loaded
pipeline, :func:`is_sa3` answers "is this Stable Audio 3" for a loader's handle or a loaded pipeline.
"""
from __future__ import annotations

from dataclasses import dataclass, field

OPEN_PIPELINE = "StableAudioPipeline"
SA3_PIPELINE = "StableAudio3Pipeline"


@dataclass(frozen=True)
class Family:
    """One Stable Audio family.

    Attributes:
        key: ``"open"``, ``"sa3-medium"`` or ``"sa3-small"``.
        label: the family's name in messages.
        pipeline: the diffusers pipeline class (``model_index.json`` ``_class_name``; ``ModelHandle.family``).
        min_diffusers: the first diffusers release with that pipeline.
        libraries: the ``model_index.json`` component libraries its folders may name (anything else is code in
            the folder, never run).
        max_seconds: longest clip in one pass (the published limit); ``None``: the model's own window
            (transformer sample size x VAE hop / sample rate).
        steps, cfg: default sampling steps and guidance (an undistilled checkpoint).
        distilled_steps, distilled_cfg: the defaults of a distilled checkpoint (``None``: the family has none).
        token_limit: the most prompt tokens the pipeline takes; ``None``: its tokenizer's own limit.
        can_inpaint: its DiT takes local (inpainting) conditioning: Extend's continue, the inpainted loop, Vary.
        compiles: ``torch.compile`` pays off (Stable Audio 3 runs 8 steps: compiling each new length costs more).
        decode_chunk_frames: memory mode -> latent frames per VAE decode chunk.
        chunk_on_cpu: decode in chunks on the CPU too (else whole there: RAM is plentiful and it is faster).
        refused: why the loader refuses a folder of this family whose autoencoder is not ``exact_vae``
            (``{installed}``: the installed diffusers); "" = always loaded.
        exact_vae: the autoencoder class (``vae/config.json`` ``_class_name``) that holds this family exactly.
        geometry: autoencoder config that identifies a refused family's folder (unset keys take these values).
        components: the sub-folders its folder must hold (each named in ``model_index.json``); a folder lacking
            one is refused before loading (diffusers would load it and fail later, e.g. without ``tokenizer/``).
    """

    key: str
    label: str
    pipeline: str
    min_diffusers: str
    libraries: tuple[str, ...]
    max_seconds: float | None
    steps: int
    cfg: float
    distilled_steps: int | None
    distilled_cfg: float | None
    token_limit: int | None
    can_inpaint: bool
    compiles: bool
    decode_chunk_frames: dict[str, int]
    chunk_on_cpu: bool
    refused: str = ""
    exact_vae: str = ""
    geometry: dict = field(default_factory=dict)
    components: tuple[str, ...] = ()


# Stable Audio 3's SAME decoder: 256-latent chunks decode 380 s in 0.65 s at 5.2 GiB peak (H100, fp16, weights
# included), 128 in 0.89 s at 5.1 GiB (benchmarks/gpu_sa3.py); low-vram keeps the smaller chunk. Its dense
# attention mask grows with the square of the length, so it is always chunked (tens of GiB for 380 s at once).
_SA3_CHUNKS = {"fast": 256, "balanced": 256, "low-vram": 128}
_SA3_LIBRARIES = ("diffusers", "transformers", "stable_audio_3")
_SA3_COMPONENTS = ("transformer", "vae", "text_encoder", "tokenizer", "duration_embedder", "scheduler")

FAMILIES: dict[str, Family] = {
    "open": Family(
        key="open", label="Stable Audio Open", pipeline=OPEN_PIPELINE, min_diffusers="0.30.0",
        libraries=("diffusers", "transformers", "stable_audio"), max_seconds=None, steps=100, cfg=7.0,
        distilled_steps=None, distilled_cfg=None, token_limit=None, can_inpaint=False, compiles=True,
        decode_chunk_frames={"fast": 128, "balanced": 96, "low-vram": 96}, chunk_on_cpu=False,
        components=("transformer", "vae", "text_encoder", "tokenizer", "projection_model", "scheduler")),
    # Medium and Small share the pipeline; Medium's SAME-L autoencoder encodes with 256 channels, Small's SAME-S
    # with 128. The published limits (the pipeline does not enforce them; its duration conditioning saturates at
    # 384 s); the pipeline pads and cuts prompts to 256 T5Gemma tokens.
    "sa3-medium": Family(
        key="sa3-medium", label="Stable Audio 3", pipeline=SA3_PIPELINE, min_diffusers="0.42.0",
        libraries=_SA3_LIBRARIES, max_seconds=380.0, steps=100, cfg=7.0, distilled_steps=8, distilled_cfg=1.0,
        token_limit=256, can_inpaint=True, compiles=False, decode_chunk_frames=_SA3_CHUNKS, chunk_on_cpu=True,
        components=_SA3_COMPONENTS),
    # diffusers' AutoencoderSAME lacks two parts of SAME-S (chunked attention, a kernel-3 mapping convolution), so
    # a folder that holds SAME-S as AutoencoderSAME (diffusers' own conversion script writes one) decodes wrong
    # audio and is refused; `convert-sa3` writes AutoencoderSAMEChunked (models/same_s.py), which is exact.
    "sa3-small": Family(
        key="sa3-small", label="Stable Audio 3 Small", pipeline=SA3_PIPELINE, min_diffusers="0.42.0",
        libraries=_SA3_LIBRARIES, max_seconds=120.0, steps=100, cfg=7.0, distilled_steps=8, distilled_cfg=1.0,
        token_limit=256, can_inpaint=True, compiles=False, decode_chunk_frames=_SA3_CHUNKS, chunk_on_cpu=True,
        refused=("holds the SAME-S autoencoder of Stable Audio 3 Small as diffusers' AutoencoderSAME, which cannot "
                 "represent SAME-S exactly (it lacks its chunked attention and kernel-3 mapping convolution; "
                 "diffusers' own conversion script writes such folders), so it would make wrong audio and the "
                 "pack refuses it. Convert the official checkpoint with this pack instead: `python -m nodes.cli "
                 "convert-sa3 model.safetensors OUT_DIR --text-encoder T5GEMMA_DIR` writes an exact folder "
                 "(see the README)."),
        exact_vae="AutoencoderSAMEChunked",
        geometry={"encoder_channels": 128, "latent_dim": 256, "encoder_transformer_depths": [6]},
        components=_SA3_COMPONENTS),
}
PIPELINES = tuple(dict.fromkeys(f.pipeline for f in FAMILIES.values()))  # the classes the loader takes


def family_for_class(pipeline: str) -> Family | None:
    """The first family of diffusers pipeline class ``pipeline`` (what a folder or a handle says), or ``None``."""
    return next((f for f in FAMILIES.values() if f.pipeline == pipeline), None)


def pipeline_class_of(obj) -> str | None:
    """The Stable Audio pipeline class of a loader's ``ModelHandle`` (its ``family``) or of a loaded pipeline
    (Stable Audio 3 has a duration embedder, Open 1.0 a projection model); ``None`` for anything else."""
    family = getattr(obj, "family", None)
    if isinstance(family, str):
        return family
    if hasattr(obj, "duration_embedder"):
        return SA3_PIPELINE
    return OPEN_PIPELINE if hasattr(obj, "projection_model") else None


def is_sa3(obj) -> bool:
    """True for Stable Audio 3: a handle of a Stable Audio 3 folder or a loaded ``StableAudio3Pipeline``."""
    return pipeline_class_of(obj) == SA3_PIPELINE


def family_of(pipe) -> Family:
    """The record of a loaded pipeline: Stable Audio Open, or Stable Audio 3 Medium / Small (told apart by the
    autoencoder's encoder channels: SAME-L 256, SAME-S 128)."""
    if not is_sa3(pipe):
        return FAMILIES["open"]
    return FAMILIES["sa3-medium" if int(pipe.vae.config.get("encoder_channels", 128)) >= 256 else "sa3-small"]


def refused_family(pipeline: str, vae_config: dict) -> Family | None:
    """The refused family a folder of ``pipeline`` with autoencoder config ``vae_config`` belongs to, or ``None``
    (a refused family's geometry matches when every key the config sets has the family's value)."""
    for fam in FAMILIES.values():
        if fam.pipeline != pipeline or not fam.refused or vae_config.get("_class_name") == fam.exact_vae:
            continue
        given = {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in vae_config.items() if k in fam.geometry}
        if {**fam.geometry, **given} == fam.geometry:
            return fam
    return None


def is_distilled(pipe) -> bool:
    """The distilled checkpoints (SA3 Small/Medium) sample with the stochastic "ping-pong" scheduler in 8 steps,
    no guidance; the base checkpoint samples deterministically in about 100 steps with guidance."""
    return bool(pipe.scheduler.config.get("stochastic_sampling", False))


def model_defaults(pipe) -> tuple[int, float]:
    """(steps, cfg) the model is made for: Open 1.0 100 and 7; distilled Stable Audio 3 8 and 1 (no guidance:
    it is distilled in); an undistilled Stable Audio 3 base 100 and 7."""
    fam = family_of(pipe)
    if fam.distilled_steps is not None and is_distilled(pipe):
        return fam.distilled_steps, fam.distilled_cfg
    return fam.steps, fam.cfg


def prompt_token_limit(pipe) -> int:
    """The text encoder's token limit (Stable Audio Open: its tokenizer's, 128; Stable Audio 3: 256)."""
    limit = int(getattr(pipe.tokenizer, "model_max_length", 128) or 128)
    cap = family_of(pipe).token_limit
    return min(limit, cap) if cap is not None else limit


def max_seconds_of(pipe) -> float:
    """Longest clip the model makes in one pass. Stable Audio Open: transformer sample size x VAE hop / sample
    rate (1024 x 2048 / 44100 = 47.55 s); Stable Audio 3: the published limit (Medium 380 s, Small 120 s)."""
    fam = family_of(pipe)
    if fam.max_seconds is not None:
        return fam.max_seconds
    rate = int(pipe.vae.config.sampling_rate)
    return float(pipe.transformer.config.sample_size) * float(pipe.vae.hop_length) / rate


def can_inpaint(pipe) -> bool:
    """True when the model can inpaint: a family that can, whose DiT has the local (inpainting) conditioning with
    trained weights (``convert-sa3`` fills a checkpoint's missing inpainting embedder with zeros: such a model would
    ignore what it should keep)."""
    if not family_of(pipe).can_inpaint:
        return False
    if int(pipe.transformer.config.get("local_add_cond_dim", 0) or 0) != int(pipe.vae.config.latent_dim) + 1:
        return False
    blocks = getattr(pipe.transformer, "transformer_blocks", None)
    embed = getattr(blocks[0], "to_local_embed", None) if blocks else None
    return embed is None or bool(embed[0].weight.detach().any())


def decode_chunk_frames(pipe, memory: str, load_device: str) -> int:
    """VAE decode chunk (latent frames; 0 = whole) for ``memory`` mode on ``load_device``; ``pipe`` ``None``:
    Stable Audio Open's."""
    fam = family_of(pipe) if pipe is not None else FAMILIES["open"]
    return fam.decode_chunk_frames[memory] if fam.chunk_on_cpu or load_device != "cpu" else 0
