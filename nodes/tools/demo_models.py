"""Tiny, randomly initialised BLIP and Stable Audio models for the plumbing demo and the tests.

They have the real architectures (``BlipForConditionalGeneration``; ``StableAudioPipeline`` with T5, Oobleck VAE
at the real 2048 hop and 44.1 kHz, DiT and the cosine DPM-Solver scheduler), a few thousand random weights, and
are written with ``save_pretrained`` into a folder laid out like ``ComfyUI/models/`` so they load through exactly
the code users run. They make noise and random words, not soundscapes: nothing here is a real model.
"""
from __future__ import annotations

import os

BLIP_NAME = "tiny-random-blip"
STABLE_AUDIO_NAME = "tiny-random-stable-audio"
STABLE_AUDIO3_NAME = "tiny-random-stable-audio-3"

# Scene words for the tiny captioner's vocabulary (its output is random, but readable words).
_WORDS = ("a an the of with and on in at near photography picture photo beach sea waves sand forest trees river rain city street night "
          "office desk people cafe fire snow mountain field birds train wind sky water boat park road house room "
          "window light dark old small big two man woman dog cat car bridge lake garden").split()

_T5_PIECES = ("▁a ▁the ▁of ▁and ▁with ▁sound ▁ambience ▁waves ▁wind ▁rain ▁birds ▁forest ▁city ▁night ▁fire "
              "▁water ▁soft ▁calm ▁distant ▁field ▁recording ▁stereo ▁music ▁noise ▁low ▁quality ▁steady ▁quiet "
              "▁room ▁tone ▁crowd ▁street ▁traffic ▁sea ▁gulls ▁leaves ▁insects ▁hum ▁, s ing ed e a o i").split()


# Published architectures (Salesforce/blip-image-captioning-large, stabilityai/stable-audio-open-1.0) for the GPU
# benchmarks, where speed and memory matter and weight values do not; "tiny" for tests and the demo.
BLIP_SIZES = {
    "tiny": dict(vision=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                             image_size=32, patch_size=8, projection_dim=32),
                 text=dict(hidden_size=32, encoder_hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                           num_attention_heads=4, max_position_embeddings=64, projection_dim=32),
                 vocab_size=None, image_size=32, projection_dim=32),
    "large": dict(vision=dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                              image_size=384, patch_size=16, projection_dim=512),
                  text=dict(hidden_size=768, encoder_hidden_size=1024, intermediate_size=3072, num_hidden_layers=12,
                            num_attention_heads=12, max_position_embeddings=512, projection_dim=768),
                  vocab_size=30524, image_size=384, projection_dim=512),
}


def build_tiny_blip(folder: str, seed: int = 0, size: str = "tiny") -> str:
    """Write a random BLIP captioner (model + processor) to ``folder``; returns ``folder``.

    ``size``: "tiny" (47 k weights, tests and demo) or "large" (the published BLIP-large architecture, 470 M, for
    GPU benchmarks; fp16 weights on disk)."""
    import torch
    from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

    os.makedirs(folder, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *_WORDS, "[DEC]", "[ENC]"]
    vocab_dir = os.path.join(folder, "_vocab")
    os.makedirs(vocab_dir, exist_ok=True)
    with open(os.path.join(vocab_dir, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    # from a folder we just wrote: the portable way on transformers 4.x and 5.x (BertTokenizer(vocab_file=...) is
    # silently ignored by 5.x); local only, like every load in the pack
    tok = BertTokenizer.from_pretrained(vocab_dir, local_files_only=True, bos_token="[DEC]",
                                        additional_special_tokens=["[ENC]"], model_max_length=32)
    for name in os.listdir(vocab_dir):
        os.remove(os.path.join(vocab_dir, name))
    os.rmdir(vocab_dir)
    ids = {t: tok.convert_tokens_to_ids(t) for t in ("[DEC]", "[PAD]", "[SEP]")}
    arch = BLIP_SIZES[size]
    torch.manual_seed(seed)
    config = BlipConfig(
        vision_config=arch["vision"],
        text_config=dict(arch["text"], vocab_size=arch["vocab_size"] or len(tok), bos_token_id=ids["[DEC]"],
                         pad_token_id=ids["[PAD]"], sep_token_id=ids["[SEP]"], eos_token_id=ids["[SEP]"]),
        projection_dim=arch["projection_dim"], image_text_hidden_size=arch["text"]["hidden_size"])
    model = BlipForConditionalGeneration(config).eval()
    if size != "tiny":
        model = model.half()
    side = arch["image_size"]
    processor = BlipProcessor(image_processor=BlipImageProcessor(size={"height": side, "width": side}), tokenizer=tok)
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    return folder


def _t5_tokenizer(max_length: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [(p, -1.0 - i * 0.01) for i, p in enumerate(_T5_PIECES)]
    backend = Tokenizer(models.Unigram(pieces, unk_id=2))
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    backend.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return T5TokenizerFast(tokenizer_object=backend, extra_ids=0, model_max_length=max_length,
                           eos_token="</s>", unk_token="<unk>", pad_token="<pad>")


STABLE_AUDIO_SIZES = {
    "tiny": dict(t5=dict(d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2, relative_attention_num_buckets=8,
                         relative_attention_max_distance=16),
                 t5_vocab=None,
                 projection=dict(text_encoder_dim=16, conditioning_dim=8),
                 # the encoder outputs mean and scale: encoder_hidden_size = 2 x decoder_input_channels (128 = 2 x 64)
                 vae=dict(encoder_hidden_size=8, channel_multiples=[1, 1, 1, 1, 1], decoder_channels=4,
                          decoder_input_channels=4),
                 dit=dict(in_channels=4, out_channels=4, num_layers=2, attention_head_dim=8, num_attention_heads=2,
                          num_key_value_attention_heads=1, cross_attention_dim=16, time_proj_dim=8,
                          global_states_input_dim=16, cross_attention_input_dim=8)),
    "open-1.0": dict(t5=dict(d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12,
                             relative_attention_num_buckets=32, relative_attention_max_distance=128),
                     t5_vocab=32128,
                     projection=dict(text_encoder_dim=768, conditioning_dim=768),
                     vae=dict(encoder_hidden_size=128, channel_multiples=[1, 2, 4, 8, 16], decoder_channels=128,
                              decoder_input_channels=64),
                     dit=dict(in_channels=64, out_channels=64, num_layers=24, attention_head_dim=64,
                              num_attention_heads=24, num_key_value_attention_heads=12, cross_attention_dim=768,
                              time_proj_dim=256, global_states_input_dim=1536, cross_attention_input_dim=768)),
}


def build_tiny_stable_audio(folder: str, seed: int = 0, sample_size: int = 48, max_tokens: int = 128,
                            size: str = "tiny") -> str:
    """Write a random ``StableAudioPipeline`` to ``folder``; returns ``folder``.

    With the real VAE hop (2048) and rate (44100 Hz), ``sample_size`` latents give sample_size x 2048 / 44100 s
    at most (48 -> 2.23 s; the real model: 1024 -> 47.55 s). ``size``: "tiny" (tests, demo) or "open-1.0" (the
    published Stable Audio Open 1.0 architecture, 1.3 B weights, for GPU benchmarks; fp16 on disk).
    """
    import torch
    from diffusers import (
        AutoencoderOobleck,
        CosineDPMSolverMultistepScheduler,
        StableAudioDiTModel,
        StableAudioPipeline,
    )
    from diffusers.pipelines.stable_audio import StableAudioProjectionModel
    from transformers import T5Config, T5EncoderModel

    arch = STABLE_AUDIO_SIZES[size]
    tok = _t5_tokenizer(max_tokens)
    torch.manual_seed(seed)
    text_encoder = T5EncoderModel(T5Config(
        vocab_size=arch["t5_vocab"] or len(tok), dropout_rate=0.0, pad_token_id=0, eos_token_id=1,
        decoder_start_token_id=0, feed_forward_proj="relu", **arch["t5"])).eval()
    projection = StableAudioProjectionModel(min_value=0, max_value=512, **arch["projection"])
    vae = AutoencoderOobleck(downsampling_ratios=[2, 4, 4, 8, 8], audio_channels=2, sampling_rate=44100,
                             **arch["vae"])
    transformer = StableAudioDiTModel(sample_size=sample_size, **arch["dit"])
    scheduler = CosineDPMSolverMultistepScheduler(sigma_min=0.3, sigma_max=500, sigma_data=1.0,
                                                  sigma_schedule="exponential", solver_order=2,
                                                  prediction_type="v_prediction", solver_type="midpoint")
    pipe = StableAudioPipeline(vae=vae, text_encoder=text_encoder, projection_model=projection, tokenizer=tok,
                               transformer=transformer, scheduler=scheduler)
    if size != "tiny":
        pipe.to(torch.float16)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def _gemma_tokenizer(max_length: int = 256):
    """A small Unigram tokenizer of the Gemma tokenizer class (pad 0, eos 1, bos 2, unk 3, as the real one)."""
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    pieces = [("<pad>", 0.0), ("<eos>", 0.0), ("<bos>", 0.0), ("<unk>", 0.0)]
    pieces += [(p, -1.0 - i * 0.01) for i, p in enumerate(_T5_PIECES)]
    backend = Tokenizer(models.Unigram(pieces, unk_id=3))
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    backend.post_processor = processors.TemplateProcessing(single="<bos> $A <eos>",
                                                           special_tokens=[("<bos>", 2), ("<eos>", 1)])
    # transformers 4.x: GemmaTokenizerFast; 5.x: GemmaTokenizer is the fast one
    cls = getattr(transformers, "GemmaTokenizerFast", None) or transformers.GemmaTokenizer
    return cls(tokenizer_object=backend, model_max_length=max_length, pad_token="<pad>", eos_token="<eos>",
               bos_token="<bos>", unk_token="<unk>")


# Stable Audio 3: "tiny" (tests; a tiny SAME-S: chunked attention and a kernel-3 decoder mapping, so the 120 s Small
# family), "tiny-medium" (tiny, with the SAME-L encoder width and band attention that mark the 380 s Medium family),
# "sa3-small" and "sa3-medium" (the published Small and Medium architectures: T5Gemma b-b encoder, SAME-S / SAME-L,
# the 433 M / 1.39 B DiT; for benchmarks, where speed and memory do not depend on weight values).
_T5GEMMA_BB = dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
                   num_key_value_heads=12, head_dim=64, query_pre_attn_scalar=64, sliding_window=4096)
SA3_SIZES = {
    "tiny": dict(text=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                           num_key_value_heads=1, head_dim=8, query_pre_attn_scalar=8, sliding_window=16),
                 vocab=None,
                 vae=dict(encoder_channels=8, encoder_c_mults=[2], encoder_transformer_depths=[2], latent_dim=8,
                          dim_heads=8, ff_mult=1, chunk_size=32, chunk_midpoint_shift=True,
                          decoder_conv_mapping=True),
                 dit=dict(io_channels=8, embed_dim=16, depth=2, num_heads=2, cond_token_dim=16, global_cond_dim=16,
                          local_add_cond_dim=9, timestep_features_dim=8, ff_mult=1, num_memory_tokens=2,
                          use_differential_attention=False),  # as Small's DiT
                 duration=dict(output_dim=16, fourier_dim=8)),
    "sa3-small": dict(text=_T5GEMMA_BB, vocab=256000,
                      vae=dict(),  # AutoencoderSAMEChunked's defaults are the published SAME-S
                      dit=dict(embed_dim=1024, depth=20, num_heads=16, use_differential_attention=False),
                      duration=dict(output_dim=768, fourier_dim=256)),
    "sa3-medium": dict(text=_T5GEMMA_BB, vocab=256000,
                       vae=dict(encoder_channels=256, encoder_transformer_depths=[12], decoder_sinusoidal_blocks=[8],
                                sliding_window=1),
                       dit=dict(),
                       duration=dict(output_dim=768, fourier_dim=256)),
}
SA3_SIZES["tiny-medium"] = dict(SA3_SIZES["tiny"],
                                dit=dict(SA3_SIZES["tiny"]["dit"], use_differential_attention=True),
                                vae=dict(encoder_channels=256, encoder_c_mults=[1], encoder_transformer_depths=[1],
                                         latent_dim=8, dim_heads=8, ff_mult=1, sliding_window=1))


def sa3_autoencoder(size: str = "tiny"):
    """A random SAME autoencoder of :data:`SA3_SIZES` ``size``: ``AutoencoderSAMEChunked`` (SAME-S, chunked
    attention) where the size sets ``chunk_size`` or is Small, else diffusers' ``AutoencoderSAME`` (SAME-L)."""
    arch = dict(SA3_SIZES[size]["vae"])
    common = dict(audio_channels=2, patch_size=256, encoder_strides=[16], sampling_rate=44100)
    if "sliding_window" in arch:
        from diffusers import AutoencoderSAME

        return AutoencoderSAME(**common, **arch)
    from ..models.same_s import AutoencoderSAMEChunked

    return AutoencoderSAMEChunked(**common, **arch)


def _liven(vae, transformer) -> None:
    """Make freshly initialised SA3 parts depend on their inputs, as trained ones do.

    At initialisation SAME and the DiT start their residual outputs (attention out, feed-forward out, the pre/post
    convolutions, the inpainting embedder) at zero, their decoder's output tokens at 1e-5, and differential
    attention over near-uniform softmaxes cancels to about zero: a fresh decoder ignores its latents (two random
    latents decode to within 1e-6 of each other). Small random values there, output tokens of unit size and
    sharper attention make the tiny models' outputs follow their inputs, so tests can tell inputs apart.
    """
    import torch

    with torch.no_grad():
        for part in (vae, transformer):
            for name, param in part.named_parameters():
                if "new_tokens" in name:
                    param.normal_(0.0, 1.0)
                elif not name.endswith("beta") and not param.any():
                    param.normal_(0.0, 0.05)
                if "to_qkv" in name:
                    param.mul_(4.0)
        vae.decoder.blocks[-1].mapping.weight_g.mul_(0.1)  # keep the tiny decoder's output mostly within [-1, 1]


def build_tiny_stable_audio3(folder: str, seed: int = 0, size: str = "tiny") -> str:
    """Write a random ``StableAudio3Pipeline`` (T5Gemma encoder, a SAME autoencoder at the real 4096 hop and
    44.1 kHz, ``StableAudio3DiTModel`` with the inpainting embedder, distilled flow-match scheduler) to ``folder``;
    returns ``folder``. Needs diffusers >= 0.42. ``size``: a key of :data:`SA3_SIZES` (full sizes in fp16)."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, StableAudio3DiTModel, StableAudio3Pipeline
    from diffusers.pipelines.stable_audio_3.modeling_stable_audio_3 import StableAudio3DurationEmbedder
    from transformers import T5GemmaConfig, T5GemmaEncoderModel

    from ..models.same_s import save_pipeline

    arch = SA3_SIZES[size]
    tok = _gemma_tokenizer(256)
    torch.manual_seed(seed)
    encoder = dict(vocab_size=arch["vocab"] or len(tok), max_position_embeddings=512, **arch["text"])
    text_encoder = T5GemmaEncoderModel(T5GemmaConfig(encoder=encoder, decoder=encoder, vocab_size=encoder["vocab_size"],
                                                     is_encoder_decoder=False)).eval()
    vae = sa3_autoencoder(size)
    transformer = StableAudio3DiTModel(**arch["dit"])
    duration = StableAudio3DurationEmbedder(**arch["duration"])
    scheduler = FlowMatchEulerDiscreteScheduler(stochastic_sampling=True, shift=1.0)
    if size.startswith("tiny"):
        _liven(vae, transformer)
    pipe = StableAudio3Pipeline(vae=vae, text_encoder=text_encoder, tokenizer=tok, duration_embedder=duration,
                                transformer=transformer, scheduler=scheduler)
    if not size.startswith("tiny"):
        pipe.to(torch.float16)
    save_pipeline(pipe, folder)
    return folder


def build_demo_models(models_dir: str, seed: int = 0, *, blip_name: str = BLIP_NAME,
                      stable_audio_name: str = STABLE_AUDIO_NAME, sample_size: int = 48) -> tuple[str, str]:
    """Build both tiny models under ``models_dir`` laid out like ComfyUI's: ``blip/<blip_name>`` and
    ``diffusers/<stable_audio_name>``; ``sample_size`` latents set the longest clip (48 -> 2.23 s, 224 -> 10.4 s).
    Returns the two folders."""
    import warnings

    from ..models.loading import quiet_libraries

    quiet_libraries()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        blip = build_tiny_blip(os.path.join(models_dir, "blip", blip_name), seed)
        sa = build_tiny_stable_audio(os.path.join(models_dir, "diffusers", stable_audio_name), seed,
                                     sample_size=sample_size)
    return blip, sa


# ------------------------------------------------------------------------------------------------------- CLAP
CLAP_NAME = "tiny-random-clap"


def _roberta_tokenizer(max_length: int):
    """A small byte-level BPE tokenizer of the RoBERTa class (what CLAP uses), trained here on scene words."""
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # RoBERTa's ids: bos 0, pad 1, eos 2, unk 3, mask 4
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    words = _WORDS + [p.lstrip("▁") for p in _T5_PIECES if len(p) > 2]
    backend.train_from_iterator([" ".join(words)] * 3 + [" " + w for w in words], trainer)
    backend.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True,
                                                          add_prefix_space=False)
    # transformers 4.x: RobertaTokenizerFast; 5.x: RobertaTokenizer is the fast one
    cls = getattr(transformers, "RobertaTokenizerFast", None) or transformers.RobertaTokenizer
    return cls(tokenizer_object=backend, model_max_length=max_length, bos_token="<s>", eos_token="</s>",
               sep_token="</s>", cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")


# "tiny" for tests and the demo; "larger" is the published laion/larger_clap_general architecture (HTSAT 2-2-12-2,
# width 128; RoBERTa-base text encoder; 512-d projection) for GPU cost figures, where weight values do not matter.
CLAP_SIZES = {
    "tiny": dict(text=dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32),
                 audio=dict(patch_embeds_hidden_size=8, hidden_size=16, depths=(1, 1), num_attention_heads=(2, 2),
                            num_hidden_layers=2),
                 vocab=None, projection_dim=16),
    "larger": dict(text=dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
                   audio=dict(patch_embeds_hidden_size=128, hidden_size=1024, depths=(2, 2, 12, 2),
                              num_attention_heads=(4, 8, 16, 32), num_hidden_layers=4),
                   vocab=50265, projection_dim=512),
}


def build_tiny_clap(folder: str, seed: int = 0, fusion: bool = False, size: str = "tiny") -> str:
    """Write a random ``ClapModel`` with its ``ClapProcessor`` to ``folder``; returns ``folder``.

    The audio side keeps the real input geometry (48 kHz, 10 s windows, 64 mel bins, hop 480, HTSAT spectrogram
    size 256, Swin windows of 8); "tiny" has a two-stage, 8-wide Swin and a one-layer RoBERTa over a 400-token
    byte-level BPE vocabulary (prompts up to 128 tokens): 17 k weights whose scores are random numbers, not
    audio-text agreement. ``fusion``: the feature-fusion variant (as laion/clap-htsat-fused), fed 4-channel
    "fusion" features. ``size``: a key of :data:`CLAP_SIZES` ("larger": 190 M weights, fp16 on disk).
    """
    import torch
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor

    arch = CLAP_SIZES[size]
    max_tokens = 128 if size == "tiny" else 512
    tok = _roberta_tokenizer(max_tokens)
    torch.manual_seed(seed)
    config = ClapConfig(
        text_config=dict(arch["text"], vocab_size=arch["vocab"] or len(tok), max_position_embeddings=max_tokens + 2,
                         hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0),
        audio_config=dict(arch["audio"], window_size=8, num_mel_bins=64, spec_size=256, patch_size=4,
                          patch_stride=(4, 4), hidden_dropout_prob=0.0, enable_fusion=fusion,
                          fusion_type="aff_2d" if fusion else None),
        projection_dim=arch["projection_dim"])
    model = ClapModel(config).eval()
    if size != "tiny":
        model = model.half()
    extractor = ClapFeatureExtractor(feature_size=64, sampling_rate=48000, hop_length=480, max_length_s=10,
                                     fft_window_size=1024, frequency_min=50, frequency_max=14000,
                                     truncation="fusion" if fusion else "rand_trunc", padding="repeatpad")
    model.save_pretrained(folder, safe_serialization=True)
    ClapProcessor(feature_extractor=extractor, tokenizer=tok).save_pretrained(folder)
    return folder
