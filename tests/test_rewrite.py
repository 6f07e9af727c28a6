"""Rewrite Ambient Prompt (LLM): a tiny random Llama-class causal LM with a word-level tokenizer and a chat template,
built here and saved as safetensors into a ComfyUI-like models/LLM folder, loaded through Load Prompt LLM.

The tiny model writes random words (it was never trained): nothing here fakes or asserts what it says. The tests
check the plumbing (the chat it is given, greedy and deterministic decoding, reproduced straight from transformers,
one cleaned line within the token limit or the rule prompt with a note saying why, progress, Cancel, the model back
off the run device, refused folders) and the cleaning on given strings.
"""
from __future__ import annotations

import shutil

import pytest
import torch

from conftest import pack, pack_module, run_node

N = pack.NODE_CLASS_MAPPINGS
loading = pack_module("models.loading")
rewrite = pack_module("generate.rewrite")
glue = pack_module("comfy.glue")
shorten = pack_module("text.shorten")
mm = pytest.importorskip("comfy.model_management")

NAME = "tiny-random-instruct"
NODE = "Rewrite Ambient Prompt (LLM)"
RUN_DEVICE = "cpu:0"  # stands in for the GPU: a distinct device name, so the moves happen and are logged
CAPTION = "a snowy cabin in the mountains at night"
RULE = "wind over snow, creaking wooden cabin, crackling fireplace, high quality field recording"
WORDS = ("a an the of with and on in at near waves wind rain birds forest city night fire water soft calm distant "
         "field recording crickets sea gulls leaves hum traffic footsteps crowd bells snow cabin wooden creaking "
         "crackling fireplace quality high over mountains snowy scene caption draft prompt write sound designer "
         "music piano , . : ' \"").split()
CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def build_tiny_llm(folder, seed: int = 0) -> None:
    """A random 2-layer Llama (hidden 32) over a word-level tokenizer of scene words, with a chat template."""
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers

    specials = ["<unk>", "<pad>", "<|im_start|>", "<|im_end|>"]
    vocab = {t: i for i, t in enumerate(specials + sorted(set(WORDS)) + ["system", "user", "assistant"])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>",
                                               bos_token="<|im_start|>", eos_token="<|im_end|>", model_max_length=1024)
    tok.chat_template = CHAT_TEMPLATE
    config = transformers.LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                                      bos_token_id=vocab["<|im_start|>"], eos_token_id=vocab["<|im_end|>"],
                                      pad_token_id=vocab["<pad>"], tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = transformers.LlamaForCausalLM(config)
    model.save_pretrained(str(folder), safe_serialization=True)
    tok.save_pretrained(str(folder))


@pytest.fixture(scope="module")
def llm_root(comfy_models, tmp_path_factory):
    """ComfyUI/models/LLM with the tiny instruct model, registered as the pack registers it."""
    import folder_paths

    root = tmp_path_factory.mktemp("models") / "LLM"
    build_tiny_llm(root / NAME)
    glue.model_roots(glue.LLM_FOLDER)  # registers the pack's folder type (models/LLM)
    folder_paths.add_model_folder_path(glue.LLM_FOLDER, str(root))
    return root


@pytest.fixture
def handle(llm_root):
    return run_node("AmbientLlmLoader", model=NAME, dtype="fp32")[0]


def independent_greedy(model, tokenizer, caption, rule, max_new_tokens):
    """The tiny model's greedy answer straight from transformers: its chat template, ``generate`` without the
    pack's stopping criterion."""
    text = tokenizer.apply_chat_template(rewrite.build_messages(caption, rule), add_generation_prompt=True,
                                         tokenize=False)
    enc = tokenizer(text, return_tensors="pt", add_special_tokens=False, return_token_type_ids=False)
    out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                         pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)


def assert_prompt_or_fallback(prompt, note, raw=None):
    """Either one cleaned line of the model's within the token limit, or the rule prompt with a note saying so."""
    assert "\n" not in prompt and prompt.strip() == prompt and prompt
    if note.startswith("Kept the rule prompt"):
        assert prompt == RULE and "answer was" in note
        if raw is not None:
            assert rewrite.clean_answer(raw, CAPTION, RULE)[1] is not None
    else:
        assert note.startswith(f"Rewritten by {NAME}")
        assert shorten.estimate_tokens(prompt) <= rewrite.PROMPT_TOKEN_LIMIT
        if raw is not None:
            assert rewrite.clean_answer(raw, CAPTION, RULE)[0] == prompt


# ------------------------------------------------------------------------------------------------- cleaning
@pytest.mark.parametrize("raw, expected", [
    ('Prompt: "waves, wind"', "waves, wind"),
    ("Here is the ambience prompt:\n\n\"gentle waves on pebbles, gulls calling, sea breeze.\"\nIt evokes a calm "
     "shore.", "gentle waves on pebbles, gulls calling, sea breeze"),
    ("**Ambient prompt:** `wind in pines, distant stream`", "wind in pines, distant stream"),
    ("1. howling wind, creaking cabin walls , , crackling fire.", "howling wind, creaking cabin walls, crackling fire"),
    ("<think>the user wants a cabin</think>\nwind gusts, fire crackling", "wind gusts, fire crackling"),
    ("Sure! Here's a prompt: rain on a tin roof, dripping gutters", "rain on a tin roof, dripping gutters"),
    (RULE, RULE),
    ("Sure!\nwind over the ridge, snow hiss", "wind over the ridge, snow hiss"),
    ("distant thunder, distant dogs barking, distant church bells, soft rain on leaves, soft wind",
     "distant thunder, distant dogs barking, distant church bells, soft rain on leaves, soft wind"),
])
def test_cleaning_keeps_the_first_usable_line_without_labels_and_quotes(raw, expected):
    prompt, problem, notes = rewrite.clean_answer(raw, "a beach", "waves")
    assert (prompt, problem, notes) == (expected, None, [])


@pytest.mark.parametrize("raw, problem", [
    ("", "empty"),
    ("   \n\n  ", "empty"),
    ("Prompt:", "empty"),
    ("!!! ### 42 ...", "without any letters"),
    ("waves", "too short"),
    ("I'm sorry, but I can't help with that request.", "refusal"),
    ("As an AI language model, I think the scene sounds calm.", "refusal"),
    ("wind wind wind wind wind", "repeated junk"),
    ("fire : leaves fire : leaves fire : leaves fire : leaves", "repeated junk"),
    ("rain, rain, rain, wind, rain, rain", "repeated junk"),
    ("leaves waves waves near water crickets waves near water crickets waves waves", "repeated junk"),
    ("a1 b2 c3 d4 e5 ## %% && ** ((", "symbols"),
])
def test_cleaning_refuses_unusable_answers_and_says_why(raw, problem):
    prompt, why, _ = rewrite.clean_answer(raw, CAPTION, RULE)
    assert prompt == "" and problem in why


def test_cleaning_drops_music_and_speech_the_scene_lacks_and_shortens_to_the_limit():
    prompt, problem, notes = rewrite.clean_answer("waves on sand, soft piano music, gulls, people talking", "a beach",
                                                  "waves, gulls")
    assert (prompt, problem) == ("waves on sand, gulls", None)
    assert notes == ["dropped 'soft piano music', 'people talking' (not in the scene)"]
    # a scene with music keeps it
    assert rewrite.clean_answer("street musician playing guitar, footsteps", "a man playing guitar", "guitar")[0] \
        == "street musician playing guitar, footsteps"
    # nothing but unasked music left: unusable
    assert "once music or speech" in rewrite.clean_answer("piano music, singing voices", "a forest", "birds")[1]
    sources = ("wind", "stream", "rain", "thunder", "owls", "crows", "bees", "frogs", "bells", "cattle", "sheep",
               "goats", "dogs", "tractor", "hail", "leaves", "branches", "creek", "waterfall", "geese", "ducks",
               "horses", "church", "chimes", "gravel", "mud", "puddles", "reeds", "insects", "hawks")
    long = ", ".join(f"{s} {adj}" for s, adj in zip(sources, ("far away", "close by", "softly") * 10))
    prompt, problem, notes = rewrite.clean_answer(long, "a valley", "wind")
    assert problem is None and shorten.estimate_tokens(prompt) <= rewrite.PROMPT_TOKEN_LIMIT < shorten.estimate_tokens(long)
    assert long.startswith(prompt) and notes[0].startswith("shortened from")


def test_the_chat_and_the_plain_prompt(llm_root):
    from transformers import AutoTokenizer

    messages = rewrite.build_messages("  arafed   view of a beach " + " ".join(f"stone{i}" for i in range(200)), RULE)
    assert [m["role"] for m in messages] == ["system", "user"] and messages[0]["content"] == rewrite.SYSTEM_PROMPT
    assert "arafed" not in messages[1]["content"] and RULE in messages[1]["content"]  # BLIP's artefact is gone
    assert "Scene (an image caption): a beach stone0 stone1 " in messages[1]["content"]
    assert messages[1]["content"].count("stone") == 80 - 2 and "stone78" not in messages[1]["content"]  # 80 words
    for rule in ("no music", "one line", "comma-separated", "never add a sound the picture contradicts"):
        assert rule in rewrite.SYSTEM_PROMPT
    tok = AutoTokenizer.from_pretrained(str(llm_root / NAME), local_files_only=True)
    chat = rewrite.render_chat(tok, messages)
    assert chat.startswith("<|im_start|>system\n") and chat.endswith("<|im_start|>assistant\n")
    tok.chat_template = None  # a base model's tokenizer: a plain instruction prompt
    plain = rewrite.render_chat(tok, messages)
    assert plain.startswith(rewrite.SYSTEM_PROMPT) and plain.endswith("\nPrompt:") and RULE in plain


# ------------------------------------------------------------------------------------------------- the model
def test_loader_lists_checks_and_loads_the_llm_folder(handle, llm_root, comfy_models):
    from transformers import LlamaForCausalLM

    loader = N["AmbientLlmLoader"]
    assert loader.INPUT_TYPES()["required"]["model"][0] == [NAME]
    assert loader.VALIDATE_INPUTS(model=NAME) is True
    assert (handle.kind, handle.family, handle.name, handle.dtype) == ("llm", "LlamaForCausalLM", NAME, "fp32")
    model, tokenizer = loading.load(handle)
    assert isinstance(model, LlamaForCausalLM) and not model.training and tokenizer.chat_template
    assert loading.load(handle)[0] is model  # cached
    # other loaders do not list it, and it does not list theirs
    assert NAME not in N["AmbientBlipLoader"].INPUT_TYPES()["required"]["model"][0]


def test_refused_folders_say_what_is_missing(llm_root, comfy_models, tmp_path, monkeypatch):
    import folder_paths

    extra = tmp_path / "LLM"
    no_tok = extra / "no-tokenizer"
    shutil.copytree(llm_root / NAME, no_tok)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (no_tok / name).unlink()
    pickled = extra / "pickle-only"
    shutil.copytree(llm_root / NAME, pickled)
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    shutil.copytree(comfy_models["blip"], extra / "a-blip")
    paths, exts = folder_paths.folder_names_and_paths[glue.LLM_FOLDER]
    monkeypatch.setitem(folder_paths.folder_names_and_paths, glue.LLM_FOLDER, (list(paths) + [str(extra)], exts))
    listed = N["AmbientLlmLoader"].INPUT_TYPES()["required"]["model"][0]
    assert "a-blip" not in listed and "no-tokenizer" in listed
    cases = [("no-tokenizer", ("no tokenizer", "tokenizer.json", "hf download")),
             ("pickle-only", ("pickle weights", ".safetensors")),
             ("a-blip", ("not a text-generation (...ForCausalLM) model",)),
             ("Qwen2.5-0.5B-Instruct", ("no such folder", "hf download Qwen/"))]
    for name, says in cases:
        verdict = N["AmbientLlmLoader"].VALIDATE_INPUTS(model=name)
        assert verdict.startswith('Load Prompt LLM: "model" ') and all(s in verdict for s in says), verdict
        with pytest.raises(ValueError) as err:
            run_node("AmbientLlmLoader", model=name, dtype="auto")
        assert str(err.value) == verdict


@pytest.mark.parametrize("max_new_tokens", [8, 24])  # (with this torch, the tiny model's 8 words pass, 24 do not)
def test_rewrite_is_greedy_deterministic_and_reproduced_straight_from_transformers(handle, max_new_tokens):
    model, tokenizer = loading.load(handle)
    ticks = []
    result = rewrite.rewrite_prompt(model, tokenizer, CAPTION, RULE, max_new_tokens=max_new_tokens, model_name=NAME,
                                    on_step=lambda done, total: ticks.append((done, total)))
    again = rewrite.rewrite_prompt(model, tokenizer, CAPTION, RULE, max_new_tokens=max_new_tokens, model_name=NAME)
    assert again == result
    # the pack's stopping criterion only ends generation early (after a usable line): a prefix of plain greedy
    assert independent_greedy(model, tokenizer, CAPTION, RULE, max_new_tokens).startswith(result.raw) and result.raw
    assert_prompt_or_fallback(result.prompt, result.note, result.raw)
    assert result.used_model == (result.prompt != RULE)
    assert ticks[-1] == (max_new_tokens, max_new_tokens) and all(t == max_new_tokens for _, t in ticks)
    assert [d for d, _ in ticks[:-1]] == sorted(d for d, _ in ticks[:-1]) and len(ticks) >= 2
    # the global RNG is left as it was (greedy decoding under a private seed)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    rewrite.rewrite_prompt(model, tokenizer, CAPTION, RULE, max_new_tokens=8)
    assert torch.equal(torch.rand(3), expected)


def test_the_node_rewrites_or_falls_back_and_puts_the_model_back(handle, plans):
    first = run_node("AmbientPromptRewriter", llm=handle, caption=CAPTION, prompt=RULE, max_new_tokens=16)
    second = run_node("AmbientPromptRewriter", llm=handle, caption=CAPTION, prompt=RULE, max_new_tokens=16)
    assert first == second and len(first) == 2
    assert_prompt_or_fallback(*first)
    assert plans and plans[-1].moves[0] == ("llm", RUN_DEVICE) and plans[-1].moves[-1] == ("llm", "cpu")
    model, _ = loading.load(handle)
    assert all(str(p.device) == "cpu" for p in model.parameters())


def test_cancel_stops_generation_and_puts_the_model_back(handle, plans, interrupt_after):
    ticks = interrupt_after(3)
    with pytest.raises(mm.InterruptProcessingException):
        run_node("AmbientPromptRewriter", llm=handle, caption=CAPTION, prompt=RULE, max_new_tokens=64)
    assert len(ticks) == 3 and ticks[-1][1] == 64 and ticks[-1][0] < 64
    assert plans[-1].moves[-1] == ("llm", "cpu")
    model, _ = loading.load(handle)
    assert all(str(p.device) == "cpu" for p in model.parameters())


def test_bad_inputs_name_the_input_and_the_fix(handle):
    cases = [(dict(prompt="  "), ('"prompt" is empty', "Build Ambient Prompt")),
             (dict(max_new_tokens=4), ('"max_new_tokens" is 4', "from 8 to 256")),
             (dict(llm="not a model"), ('"llm" is str', "Load Prompt LLM")),
             (dict(caption=["a", "list"]), ('"caption" is a list', "Caption Image (BLIP)"))]
    for change, says in cases:
        inputs = {**dict(llm=handle, caption=CAPTION, prompt=RULE, max_new_tokens=16), **change}
        with pytest.raises(ValueError) as err:
            run_node("AmbientPromptRewriter", **inputs)
        assert str(err.value).startswith(f"{NODE}: ") and all(s in str(err.value) for s in says), str(err.value)


def test_a_model_without_a_chat_template_gets_the_plain_prompt(handle, llm_root):
    from transformers import AutoTokenizer

    model, _ = loading.load(handle)
    tok = AutoTokenizer.from_pretrained(str(llm_root / NAME), local_files_only=True)
    tok.chat_template = None  # a base model's tokenizer
    result = rewrite.rewrite_prompt(model, tok, CAPTION, RULE, max_new_tokens=8, model_name=NAME)
    plain = rewrite.render_chat(tok, rewrite.build_messages(CAPTION, RULE))
    enc = tok(plain, return_tensors="pt", return_token_type_ids=False)
    out = model.generate(**enc, max_new_tokens=8, do_sample=False, num_beams=1, pad_token_id=tok.pad_token_id)
    assert tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True).startswith(result.raw)
    assert_prompt_or_fallback(result.prompt, result.note, result.raw)
