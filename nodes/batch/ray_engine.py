"""``--engine ray``: the batch on Ray Data. ``map_batches`` with a callable class (:class:`RayWorker`) that loads the
models once per worker, one GPU per worker where CUDA is there, one CPU otherwise. Ray is an optional extra
(``pip install "ray[data]"``), imported only here and only when asked. Workers write the WAVs (atomically, as the
local engine does); the driver appends the result lines as the records stream back."""
from __future__ import annotations

import argparse
import json
import logging
import os

from .runner import ItemRunner

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MISSING = ('--engine ray needs Ray Data, an optional extra: pip install "ray[data]" (in the Python that runs '
           "this command), or use --engine local.")


class RayWorker:
    """One Ray actor: an :class:`ItemRunner` (models loaded once), then records for each batch of items."""

    def __init__(self, args: dict, out_dir: str, verbose: bool, threads: int):
        import torch

        # CPU sums depend on how many threads split them: the driver's count keeps the WAVs byte-identical to
        # --engine local (Ray sets OMP_NUM_THREADS to the worker's num_cpus, 1 here)
        torch.set_num_threads(threads)
        self.runner = ItemRunner(argparse.Namespace(**args), out_dir, verbose)

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        records = [json.dumps(self.runner.process(json.loads(text))) for text in batch["item"]]
        return {"record": np.array(records, dtype=object)}


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401 - the [data] extra
    except ImportError as err:
        raise ValueError(f"{MISSING} ({err})") from err
    return ray


def _start(ray, address: str | None, workers: int) -> None:
    env = {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)}}
    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, runtime_env=env, log_to_driver=False, logging_level="ERROR")
    else:
        ray.init(num_cpus=max(workers, 1), runtime_env=env, include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR")


def run_ray(items: list[dict], args: argparse.Namespace, out_dir: str, on_result, *, workers: int = 0,
            address: str | None = None, verbose: bool = False) -> None:
    """Process ``items`` on Ray Data with ``workers`` actors (0: one per GPU, or 2 on CPUs), streaming each record
    to ``on_result`` as it comes back (in completion order)."""
    ray = import_ray()
    import torch

    gpu = torch.cuda.is_available()
    workers = workers or (max(torch.cuda.device_count(), 1) if gpu else 2)
    _start(ray, address, workers)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.WARNING)
    ds = ray.data.from_items([{"item": json.dumps(item)} for item in items],
                             override_num_blocks=max(1, min(len(items), workers * 4)))
    resources = {"num_gpus": 1} if gpu else {"num_cpus": 1}
    kwargs = {"args": vars(args), "out_dir": out_dir, "verbose": verbose, "threads": torch.get_num_threads()}
    out = ds.map_batches(RayWorker, fn_constructor_kwargs=kwargs,
                         batch_size=1, compute=ray.data.ActorPoolStrategy(size=workers), **resources)
    for row in out.iter_rows():
        on_result(json.loads(row["record"]))
