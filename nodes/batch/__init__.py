"""``python -m nodes.cli batch MANIFEST --out DIR``: a folder, a list or a table of images -> one WAV and one result
line per item; deterministic (seeds from ids), resumable (SIGKILL-safe), shardable, optionally on Ray Data.

    python -m nodes.cli batch photos/ --out runs/photos --stable-audio ... --blip ...
    python -m nodes.cli batch items.jsonl --out runs/items --shard 3/8
    python -m nodes.cli batch items.csv --out runs/items --engine ray --workers 8

Stdlib only at the top level; models, tqdm and Ray are imported when the batch runs.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from .manifest import in_shard, parse_shard, read_items
from .results import RESULTS, ResultLog, read_results, write_json_atomic
from .runner import remove_leftovers

ENGINES = ("local", "ray")


def batch_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m nodes.cli batch", allow_abbrev=False,
        description="Run the image -> ambient WAV chain over a folder of images, a .txt list of image paths, or a "
                    ".jsonl/.csv table (columns: image, optional id, caption, preset, extra, seconds, seed, loop, "
                    "loudness; other columns are kept in the results). Writes DIR/wav/*.wav and DIR/results.jsonl.",
        epilog="Every option of `python -m nodes.cli --help` (models, caption, prompt, sampling, sound craft, "
               "output) applies too, as the default for every item; a table's columns override it per item. An "
               "item without a seed gets one from a hash of its id (and --seed), so the same item gives the same "
               "WAV in any order, shard or engine.")
    p.add_argument("manifest", metavar="MANIFEST", help="a folder of images, a .txt list, or a .jsonl/.csv table")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (WAVs in DIR/wav, DIR/results.jsonl)")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="skip items already done in DIR (a WAV and a result line); --no-resume refuses a DIR with "
                        "results")
    p.add_argument("--retry-failed", action="store_true", help="run the items that failed before again")
    p.add_argument("--shard", default="1/1", metavar="I/N", help="take only the I-th of N deterministic parts of "
                   "the items (by a hash of the id), e.g. $((SLURM_ARRAY_TASK_ID+1))/$SLURM_ARRAY_TASK_COUNT")
    p.add_argument("--engine", default="local", help="local: this process, one item after another; ray: Ray Data "
                   'workers (pip install "ray[data]")')
    p.add_argument("--workers", type=int, default=0, help="with --engine ray: workers (default: one per GPU, or 2)")
    p.add_argument("--ray-address", metavar="ADDRESS", help="with --engine ray: an existing Ray cluster (e.g. auto "
                   "or ray://head:10001); default: a local Ray")
    p.add_argument("--verbose", action="store_true", help="a line per item under the progress bar")
    return p


def parse_batch_args(argv: list[str], run_parser: argparse.ArgumentParser):
    """``(batch options, run options)``: the batch's own flags, then the one-shot CLI's (``run_parser``) for the
    rest. An ``--engine`` other than local/ray is handed to the one-shot options."""
    parser = batch_parser()
    batch, rest = parser.parse_known_args(argv)
    if batch.engine not in ENGINES:
        rest += ["--engine", batch.engine]
        batch.engine = "local"
    run_parser.prog = parser.prog
    args = run_parser.parse_args(rest)
    if args.images or args.check or args.comfyui:
        parser.error(f"unexpected {' '.join(args.images) or '--check/--comfyui'}: give one MANIFEST")
    args.out = batch.out
    try:
        batch.shard = parse_shard(batch.shard)
    except ValueError as err:
        parser.error(str(err))
    return batch, args


def batch_command(argv: list[str], run_parser: argparse.ArgumentParser) -> int:
    """``batch``: exit 0 when every item is done, 1 when some failed (or the batch could not start)."""
    batch, args = parse_batch_args(argv, run_parser)
    try:
        return run_batch(batch, args)
    except KeyboardInterrupt:
        print("\ninterrupted: finished items are recorded; run the same command again to resume.", file=sys.stderr)
        return 130
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def plan_items(items: list[dict], done_before: dict[str, dict], out_dir: str, retry_failed: bool):
    """``(items to run, items skipped)``: an item is done when its result line says so and its WAV exists."""
    todo, skipped = [], []
    for item in items:
        record = done_before.get(item["id"])
        done = record is not None and record.get("status") == "done" and all(
            os.path.isfile(os.path.join(out_dir, path)) for path in record.get("wavs") or [record.get("wav") or ""])
        if done or (record is not None and record.get("status") == "failed" and not retry_failed):
            skipped.append(item)
        else:
            todo.append(item)
    return todo, skipped


def run_batch(batch: argparse.Namespace, args: argparse.Namespace) -> int:
    results_path = os.path.join(batch.out, RESULTS)
    if os.path.exists(results_path) and not batch.resume:
        raise ValueError(f"{batch.out} already holds {RESULTS}; run again without --no-resume to resume it, or "
                         "pick another --out.")
    items = [item for item in read_items(batch.manifest) if in_shard(item["id"], batch.shard)]
    os.makedirs(batch.out, exist_ok=True)
    todo, skipped = plan_items(items, read_results(results_path), batch.out, batch.retry_failed)
    for item in todo:
        remove_leftovers(batch.out, item["id"])
    counts = {"done": 0, "failed": 0}
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ambient_demo_") as tmp:
        if todo:
            _models(args, tmp)
            _run_engine(todo, batch, args, counts)
    return _summary(batch, len(items), len(skipped), counts, time.monotonic() - start)


def _models(args: argparse.Namespace, tmp: str) -> None:
    """Check the model options as the one-shot CLI does; neither model folder: the tiny demo models in ``tmp``."""
    if args.blip or args.stable_audio:
        if not args.stable_audio:
            raise ValueError("--stable-audio is required (or pass neither --blip nor --stable-audio for the demo).")
        return
    from ..tools.demo_models import build_demo_models

    args.blip, args.stable_audio = build_demo_models(tmp)
    print("PLUMBING DEMO: tiny random models; pass --blip and --stable-audio folders for real soundscapes.",
          file=sys.stderr)


def _run_engine(todo: list[dict], batch: argparse.Namespace, args: argparse.Namespace, counts: dict) -> None:
    from tqdm import tqdm

    log = ResultLog(os.path.join(batch.out, RESULTS))
    bar = tqdm(total=len(todo), unit="clip", desc="batch", disable=args.quiet, file=sys.stderr, dynamic_ncols=True)

    def on_result(record: dict) -> None:
        log.append(record)
        counts[record["status"]] = counts.get(record["status"], 0) + 1
        bar.update(1)
        if batch.verbose:
            bar.write(f"{record['status']:<6} {record['id']} -> {record.get('wav') or record.get('error')}",
                      file=sys.stderr)

    try:
        if batch.engine == "ray":
            from .ray_engine import run_ray

            run_ray(todo, args, batch.out, on_result, workers=batch.workers, address=batch.ray_address,
                    verbose=batch.verbose)
        else:
            from .runner import run_local

            run_local(todo, args, batch.out, on_result, batch.verbose)
    finally:
        bar.close()
        log.close()


def _summary(batch: argparse.Namespace, total: int, skipped: int, counts: dict, seconds: float) -> int:
    index, count = batch.shard
    summary = {"items": total, "done": counts["done"], "failed": counts["failed"], "skipped": skipped,
               "seconds": round(seconds, 3), "clips_per_hour": round(counts["done"] * 3600 / seconds, 1)
               if seconds > 0 else None, "shard": f"{index}/{count}", "engine": batch.engine}
    name = "summary.json" if count == 1 else f"summary-{index}-of-{count}.json"
    write_json_atomic(os.path.join(batch.out, name), summary)
    print(f"batch: {summary['done']} done, {summary['failed']} failed, {skipped} skipped (of {total} in shard "
          f"{index}/{count}) in {seconds:.1f} s, {summary['clips_per_hour']} clips/hour; results in "
          f"{os.path.join(batch.out, RESULTS)}")
    if counts["failed"]:
        print(f"{counts['failed']} item(s) failed (status failed, error in {RESULTS}); fix them and run again with "
              "--retry-failed.", file=sys.stderr)
    return 1 if counts["failed"] else 0
