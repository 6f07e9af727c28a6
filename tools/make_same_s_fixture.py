"""Write tests/data/same_s_reference.safetensors: a tiny SAME-S built by Stability's own code from random weights,
the inputs of tests/same_s_reference.cases() and Stability's outputs for them, so CI checks the pack's SAME-S
against the reference without the reference source.

    STABLE_AUDIO_3_SRC=/path/to/stable-audio-3 python tools/make_same_s_fixture.py

Needs a Python where that checkout imports (torch, einops, torchaudio). The fixture holds the weights under a Stable
Audio 3 checkpoint's names (``pretransform.model.*``), ``input.<case>``, ``output.<case>``, and in its metadata the
model_config.json section, the torch version and the reference commit.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

import same_s_reference as ref  # noqa: E402


def main() -> int:
    import torch
    from safetensors.torch import save_file

    model, tensors = ref.build_reference("tiny")
    inputs = ref.cases("tiny")
    outputs = ref.reference_outputs(model, inputs)
    source = os.environ[ref.SOURCE_ENV]
    commit = subprocess.run(["git", "-C", source, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    payload = dict(tensors)
    payload.update({f"input.{k}": v for k, v in inputs.items()})
    payload.update({f"output.{k}": v for k, v in outputs.items()})
    metadata = {"model_config": json.dumps(ref.model_config("tiny")), "torch": torch.__version__,
                "reference_commit": commit or "unknown"}
    os.makedirs(os.path.dirname(ref.FIXTURE), exist_ok=True)
    save_file(payload, ref.FIXTURE, metadata=metadata)
    print(f"wrote {ref.FIXTURE}: {os.path.getsize(ref.FIXTURE) / 1024:.0f} KiB, {len(tensors)} weight tensors "
          f"({sum(t.numel() for t in tensors.values())} values), cases {sorted(inputs)}")
    for name, out in outputs.items():
        print(f"  {name}: input {tuple(inputs[name].shape)} -> output {tuple(out.shape)}, peak {out.abs().max():.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
