"""``python -m nodes.cli --check``: which models are there, the exact ``hf download`` for each missing one, exit 0/3."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLIP_CMD = "hf download Salesforce/blip-image-captioning-large --local-dir {}"
SA_CMD = "hf download stabilityai/stable-audio-open-1.0 --local-dir {}"


def _check(*args, cwd=ROOT):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    return subprocess.run([sys.executable, "-m", "nodes.cli", "--check", *args], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=120)


def test_all_found_in_a_comfyui_folder(comfy_models):
    base = comfy_models["base"]
    run = _check("--comfyui", str(base))
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"found    {Path(comfy_models['blip'])}" in run.stdout
    assert f"found    {Path(comfy_models['stable_audio'])}" in run.stdout
    assert "All required models found." in run.stdout and "MISSING" not in run.stdout
    # the optional files of the native workflow are listed, and do not change the exit code
    assert "absent   stable-audio-open-1.0.safetensors" in run.stdout and run.stderr == ""


def test_missing_models_print_the_exact_download_commands_and_exit_3(tmp_path):
    comfy = tmp_path / "ComfyUI"
    (comfy / "models").mkdir(parents=True)
    run = _check("--comfyui", str(comfy))
    assert run.returncode == 3
    assert BLIP_CMD.format(comfy / "models" / "blip" / "blip-image-captioning-large") in run.stdout
    assert SA_CMD.format(comfy / "models" / "diffusers" / "stable-audio-open-1.0") in run.stdout
    assert "https://huggingface.co/stabilityai/stable-audio-open-1.0" in run.stdout and "hf auth login" in run.stdout
    assert run.stdout.count("MISSING") == 2 and "2 required model(s) missing" in run.stdout
    assert "note:" not in run.stdout
    typo = _check("--comfyui", str(tmp_path / "ComfyUl"))
    assert typo.returncode == 3 and "has no models/ folder: is it the ComfyUI folder?" in typo.stdout


def test_model_dirs_given_directly(comfy_models, tmp_path):
    blip_parent = Path(comfy_models["blip"]).parent
    # --blip names a folder of model folders; --stable-audio a model folder that is not there yet (as for a run)
    wanted = tmp_path / "somewhere" / "stable-audio-open-1.0"
    run = _check("--blip", str(blip_parent), "--stable-audio", str(wanted))
    assert run.returncode == 3
    assert f"found    {Path(comfy_models['blip'])}" in run.stdout
    assert SA_CMD.format(wanted) in run.stdout and run.stdout.count("MISSING") == 1
    # both model folders themselves: found
    run = _check("--blip", comfy_models["blip"], "--stable-audio", comfy_models["stable_audio"])
    assert run.returncode == 0 and run.stdout.count("found ") == 2
    # nothing given and not installed inside a ComfyUI: says where to look
    bare = _check()
    assert bare.returncode == 3 and "pass --comfyui DIR" in bare.stdout
    assert BLIP_CMD.format("ComfyUI/models/blip/blip-image-captioning-large") in bare.stdout


def test_models_kept_elsewhere_through_extra_model_paths_yaml(comfy_models, tmp_path):
    comfy = tmp_path / "ComfyUI"
    (comfy / "models").mkdir(parents=True)
    elsewhere = Path(comfy_models["base"]) / "models"
    (comfy / "extra_model_paths.yaml").write_text(
        f"my_disk:\n    base_path: {elsewhere}\n    blip: blip/\n    diffusers: |\n        diffusers/\n"
        f"        other/\n")
    run = _check("--comfyui", str(comfy))
    assert run.returncode == 0, run.stdout
    assert f"found    {Path(comfy_models['stable_audio'])}" in run.stdout


def test_a_broken_folder_is_named_and_counts_as_missing(tmp_path):
    blip = tmp_path / "ComfyUI" / "models" / "blip" / "blip-image-captioning-base"
    blip.mkdir(parents=True)
    (blip / "config.json").write_text('{"model_type": "blip"}')
    (blip / "pytorch_model.bin").write_bytes(b"pickle")
    run = _check("--comfyui", str(tmp_path / "ComfyUI"))
    assert run.returncode == 3
    assert f"BROKEN   {blip}" in run.stdout and "pickle" in run.stdout
    assert BLIP_CMD.format(blip.parent / "blip-image-captioning-large") in run.stdout


def test_native_checkpoint_files_are_reported(tmp_path):
    comfy = tmp_path / "ComfyUI"
    (comfy / "models" / "checkpoints").mkdir(parents=True)
    (comfy / "models" / "checkpoints" / "stable-audio-open-1.0.safetensors").write_bytes(b"x")
    run = _check("--comfyui", str(comfy))
    assert f"found    {comfy / 'models' / 'checkpoints' / 'stable-audio-open-1.0.safetensors'}" in run.stdout
    assert ("hf download ComfyUI-Wiki/t5-base t5-base.safetensors --local-dir "
            f"{comfy / 'models' / 'text_encoders'}") in run.stdout


def test_installed_inside_comfyui_checks_that_comfyui_by_default(tmp_path):
    comfy = tmp_path / "ComfyUI"
    (comfy / "models").mkdir(parents=True)
    pack = comfy / "custom_nodes" / "image-to-ambient-audio"
    shutil.copytree(ROOT / "nodes", pack / "nodes", ignore=shutil.ignore_patterns("__pycache__"))
    run = _check(cwd=pack)
    assert run.returncode == 3 and f"(ComfyUI: {comfy})" in run.stdout
    assert BLIP_CMD.format(comfy / "models" / "blip" / "blip-image-captioning-large") in run.stdout


def test_check_is_instant_and_bad_combinations_exit_2(tmp_path):
    probe = subprocess.run([sys.executable, "-c", "import sys, io; from nodes import cli; "
                            "cli.main(['--check', '--comfyui', sys.argv[1]]); "
                            "print([m for m in ('torch', 'transformers', 'diffusers', 'soundfile') if m in sys.modules])",
                            str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip().splitlines()[-1] == "[]"  # no heavy import: answers at once
    assert _check("photo.jpg").returncode == 2
    no_check = subprocess.run([sys.executable, "-m", "nodes.cli", "--comfyui", str(tmp_path)], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
    assert no_check.returncode == 2 and "--comfyui goes with --check" in no_check.stderr


def test_a_folder_lacking_its_tokenizer_is_broken_with_the_part_and_the_command(comfy_models, tmp_path):
    comfy = tmp_path / "ComfyUI"
    sa = comfy / "models" / "diffusers" / "stable-audio-open-1.0"
    shutil.copytree(comfy_models["stable_audio"], sa)
    shutil.rmtree(sa / "tokenizer")
    shutil.copytree(comfy_models["blip"], comfy / "models" / "blip" / "blip-image-captioning-base")
    run = _check("--comfyui", str(comfy))
    assert run.returncode == 3 and f"BROKEN   {sa}" in run.stdout
    flat = " ".join(run.stdout.split())  # the reason is wrapped under the folder
    assert "is incomplete: it lacks tokenizer/ (the whole folder)" in flat
    assert SA_CMD.format(sa) in flat
    assert "CLAP model, optional" in run.stdout and "1 required model(s) missing" in run.stdout
