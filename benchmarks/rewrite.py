"""What the optional LLM rewrite makes of hard scenes: rule prompt -> Rewrite Ambient Prompt (LLM), side by side.

    python benchmarks/rewrite.py --llm ComfyUI/models/LLM/Qwen2.5-1.5B-Instruct [--dtype auto] [--preset NAME]
                                 [--max-new-tokens 96] [--json benchmarks/results_rewrite.json]

For each caption (the scenes issue 18 found hard, plus a few BLIP quirks) it prints the rule prompt, the rewritten
prompt (or that the rule prompt was kept, and why), the seconds per rewrite, and at the end: how many answers were
used, whether a second run gave the same prompts (determinism) and whether every prompt is one line within the token
budget. Runs on the first CUDA GPU if there is one (fp16 by default), else the CPU. Needs a real instruct model: the
tests' tiny random one only writes random words.
"""
import argparse
import importlib
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from pack_loader import load_pack_nodes  # noqa: E402

CAPTIONS = (
    "a snowy cabin in the mountains at night",
    "a crowded night market with food stalls",
    "an empty parking garage at night",
    "a spaceship cockpit with a view of the stars",
    "a bowling alley with people bowling",
    "there is a server room with racks of computers",
    "a painting of a stormy sea with a ship",
    "a tennis match in a stadium",
    "an underwater view of a coral reef",
    "arafed view of a train station with people waiting on the platform",
    "a close up of a cat sleeping on a windowsill while it rains",
    "a blacksmith hammering a glowing sword in a forge",
)


def _mods():
    load_pack_nodes()
    return {n: importlib.import_module(f"ambient_nodes.{path}") for n, path in {
        "devices": "models.devices", "folders": "models.folders", "prompt": "text.prompt",
        "rewrite": "generate.rewrite", "shorten": "text.shorten"}.items()}


def run(m, handle, plan, preset: str, max_new_tokens: int) -> list[dict]:
    rows = []
    with m["devices"].on_device(handle, plan) as (model, tokenizer):
        for caption in CAPTIONS:
            rule = m["prompt"].build_prompt(caption, preset, "")[0]
            start = time.perf_counter()
            result = m["rewrite"].rewrite_prompt(model, tokenizer, caption, rule, max_new_tokens=max_new_tokens,
                                                 model_name=handle.name)
            rows.append({"caption": caption, "rule": rule, "prompt": result.prompt, "note": result.note,
                         "used_model": result.used_model, "seconds": round(time.perf_counter() - start, 3),
                         "tokens": m["shorten"].estimate_tokens(result.prompt)})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--llm", required=True, help="a transformers instruct model folder (e.g. models/LLM/...)")
    ap.add_argument("--dtype", default="auto", choices=("auto", "fp32", "fp16", "bf16"))
    ap.add_argument("--preset", default=None, help="Build Ambient Prompt's preset (default: its default)")
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--json", default=None, help="also write the rows and totals here")
    args = ap.parse_args(argv)
    m = _mods()
    plan = m["devices"].standalone_plan()
    folder = os.path.abspath(args.llm)
    handle = m["folders"].make_handle(m["folders"].LLM, os.path.basename(folder), [os.path.dirname(folder)],
                                      args.dtype, plan)
    preset = args.preset or importlib.import_module("ambient_nodes.text.tables").DEFAULT_PRESET
    first = run(m, handle, plan, preset, args.max_new_tokens)
    second = run(m, handle, plan, preset, args.max_new_tokens)
    for row in first:
        print(f"\n{row['caption']}\n  rule:    {row['rule']}\n  rewrite: {row['prompt']}\n  note:    {row['note']}"
              f"  ({row['seconds']:.2f} s, {row['tokens']} tokens)")
    limit = m["rewrite"].PROMPT_TOKEN_LIMIT
    totals = {"model": handle.name, "dtype": handle.dtype, "device": plan.load_device, "preset": preset,
              "used_model": sum(r["used_model"] for r in first), "captions": len(first),
              "deterministic": [r["prompt"] for r in first] == [r["prompt"] for r in second],
              "within_limit": all(r["tokens"] <= limit and "\n" not in r["prompt"] for r in first),
              "mean_seconds": round(sum(r["seconds"] for r in second) / len(second), 3)}
    print(f"\n{totals['used_model']}/{totals['captions']} rewrites used; deterministic: {totals['deterministic']}; "
          f"all one line within {limit} tokens: {totals['within_limit']}; {totals['mean_seconds']:.2f} s per "
          f"rewrite (second pass) on {plan.load_device}, {handle.dtype}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"totals": totals, "rows": first}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
