"""Stand-in for ComfyUI's ``folder_paths`` (same names and semantics for what the pack uses)."""
import os
import tempfile

base_path = tempfile.mkdtemp(prefix="comfy_stub_")
models_dir = os.path.join(base_path, "models")
output_directory = os.path.join(base_path, "output")
input_directory = os.path.join(base_path, "input")

# name -> ([paths], extensions); "diffusers" is a core type whose extension set is {"folder"}
folder_names_and_paths: dict = {"diffusers": ([os.path.join(models_dir, "diffusers")], {"folder"})}


def set_base(path: str) -> None:
    """Test helper: point models/, input/ and output/ at ``path`` (ComfyUI's --base-directory)."""
    global base_path, models_dir, output_directory, input_directory
    base_path = path
    models_dir = os.path.join(path, "models")
    output_directory = os.path.join(path, "output")
    input_directory = os.path.join(path, "input")
    folder_names_and_paths.clear()
    folder_names_and_paths["diffusers"] = ([os.path.join(models_dir, "diffusers")], {"folder"})


def add_model_folder_path(folder_name: str, full_folder_path: str, is_default: bool = False) -> None:
    paths, exts = folder_names_and_paths.setdefault(folder_name, ([], set()))
    if full_folder_path in paths:
        if is_default and paths[0] != full_folder_path:
            paths.remove(full_folder_path)
            paths.insert(0, full_folder_path)
    elif is_default:
        paths.insert(0, full_folder_path)
    else:
        paths.append(full_folder_path)


def get_folder_paths(folder_name: str) -> list:
    return folder_names_and_paths[folder_name][0][:]


def get_output_directory() -> str:
    return output_directory


def get_input_directory() -> str:
    return input_directory


def get_user_directory() -> str:
    return os.path.join(base_path, "user")
