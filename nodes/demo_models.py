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

# Scene words for the tiny captioner's vocabulary (its output is random, but readable words).
_WORDS = ("a an the of with and on in at near photography picture photo beach sea waves sand forest trees river rain city street night "
          "office desk people cafe fire snow mountain field birds train wind sky water boat park road house room "
          "window light dark old small big two man woman dog cat car bridge lake garden").split()

_T5_PIECES = ("▁a ▁the ▁of ▁and ▁with ▁sound ▁ambience ▁waves ▁wind ▁rain ▁birds ▁forest ▁city ▁night ▁fire "
              "▁water ▁soft ▁calm ▁distant ▁field ▁recording ▁stereo ▁music ▁noise ▁low ▁quality ▁steady ▁quiet "
              "▁room ▁tone ▁crowd ▁street ▁traffic ▁sea ▁gulls ▁leaves ▁insects ▁hum ▁, s ing ed e a o i").split()


def build_tiny_blip(folder: str, seed: int = 0) -> str:
    """Write a tiny random BLIP captioner (model + processor) to ``folder``; returns ``folder``."""
    import torch
    from transformers import (BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipImageProcessor,
                              BlipProcessor)

    os.makedirs(folder, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *_WORDS, "[DEC]", "[ENC]"]
    vocab_dir = os.path.join(folder, "_vocab")
    os.makedirs(vocab_dir, exist_ok=True)
    with open(os.path.join(vocab_dir, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    tok = BertTokenizer.from_pretrained(vocab_dir, bos_token="[DEC]", additional_special_tokens=["[ENC]"],
                                        model_max_length=32)
    for name in os.listdir(vocab_dir):
        os.remove(os.path.join(vocab_dir, name))
    os.rmdir(vocab_dir)
    ids = {t: tok.convert_tokens_to_ids(t) for t in ("[DEC]", "[PAD]", "[SEP]")}
    torch.manual_seed(seed)
    config = BlipConfig(
        vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                           image_size=32, patch_size=8, projection_dim=32),
        text_config=dict(vocab_size=len(tok), hidden_size=32, encoder_hidden_size=32, intermediate_size=37,
                         num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=64, projection_dim=32,
                         bos_token_id=ids["[DEC]"], pad_token_id=ids["[PAD]"], sep_token_id=ids["[SEP]"],
                         eos_token_id=ids["[SEP]"]),
        projection_dim=32, image_text_hidden_size=32)
    model = BlipForConditionalGeneration(config).eval()
    processor = BlipProcessor(image_processor=BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tok)
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


def build_tiny_stable_audio(folder: str, seed: int = 0, sample_size: int = 48, max_tokens: int = 128) -> str:
    """Write a tiny random ``StableAudioPipeline`` to ``folder``; returns ``folder``.

    With the real VAE hop (2048) and rate (44100 Hz), ``sample_size`` latents give sample_size x 2048 / 44100 s
    at most (48 -> 2.23 s).
    """
    import torch
    from diffusers import (AutoencoderOobleck, CosineDPMSolverMultistepScheduler, StableAudioDiTModel,
                           StableAudioPipeline)
    from diffusers.pipelines.stable_audio import StableAudioProjectionModel
    from transformers import T5Config, T5EncoderModel

    tok = _t5_tokenizer(max_tokens)
    torch.manual_seed(seed)
    text_encoder = T5EncoderModel(T5Config(
        vocab_size=len(tok), d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2,
        relative_attention_num_buckets=8, relative_attention_max_distance=16, dropout_rate=0.0,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)).eval()
    projection = StableAudioProjectionModel(text_encoder_dim=16, conditioning_dim=8, min_value=0, max_value=512)
    vae = AutoencoderOobleck(encoder_hidden_size=4, downsampling_ratios=[2, 4, 4, 8, 8],
                             channel_multiples=[1, 1, 1, 1, 1], decoder_channels=4, decoder_input_channels=4,
                             audio_channels=2, sampling_rate=44100)
    transformer = StableAudioDiTModel(sample_size=sample_size, in_channels=4, out_channels=4, num_layers=2,
                                      attention_head_dim=8, num_attention_heads=2, num_key_value_attention_heads=1,
                                      cross_attention_dim=16, time_proj_dim=8, global_states_input_dim=16,
                                      cross_attention_input_dim=8)
    scheduler = CosineDPMSolverMultistepScheduler(sigma_min=0.3, sigma_max=500, sigma_data=1.0,
                                                  sigma_schedule="exponential", solver_order=2,
                                                  prediction_type="v_prediction", solver_type="midpoint")
    pipe = StableAudioPipeline(vae=vae, text_encoder=text_encoder, projection_model=projection, tokenizer=tok,
                               transformer=transformer, scheduler=scheduler)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def build_demo_models(models_dir: str, seed: int = 0, *, blip_name: str = BLIP_NAME,
                      stable_audio_name: str = STABLE_AUDIO_NAME, sample_size: int = 48) -> tuple[str, str]:
    """Build both tiny models under ``models_dir`` laid out like ComfyUI's: ``blip/<blip_name>`` and
    ``diffusers/<stable_audio_name>``; ``sample_size`` latents set the longest clip (48 -> 2.23 s, 224 -> 10.4 s).
    Returns the two folders."""
    import warnings

    from .models import quiet_libraries

    quiet_libraries()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        blip = build_tiny_blip(os.path.join(models_dir, "blip", blip_name), seed)
        sa = build_tiny_stable_audio(os.path.join(models_dir, "diffusers", stable_audio_name), seed,
                                     sample_size=sample_size)
    return blip, sa
