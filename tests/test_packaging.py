"""Packaging: requirements.txt and pyproject's dependencies are the same list; no torch; transformers beside
diffusers; the files a pack needs are there."""
import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _requirements():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_requirements_and_pyproject_dependencies_are_identical():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["dependencies"] == _requirements()


def test_no_torch_and_transformers_beside_diffusers():
    names = [re.split(r"[<>=!~ ;\[]", r)[0].lower() for r in _requirements()]
    assert not {"torch", "torchvision", "torchaudio"} & set(names)
    assert "diffusers" in names and "transformers" in names


def test_registry_fields_and_pack_files():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "comfyui" not in data["project"]["name"].lower()
    assert {"PublisherId", "DisplayName", "Icon"} <= set(data["tool"]["comfy"])
    for name in ("__init__.py", "nodes/__init__.py", "requirements.txt", "README.md", "LICENSE", ".ci/run"):
        assert (ROOT / name).is_file(), name
