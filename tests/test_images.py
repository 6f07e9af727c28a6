"""Load Image (or Example): the shipped workflows' picture loader runs on a fresh ComfyUI's empty input folder."""
import os

import pytest

from conftest import pack, pack_module, run_node

images = pack_module("generate.images")
EXAMPLE = os.path.join(images.ASSETS, "example_beach.jpg")


@pytest.fixture
def input_dir(tmp_path):
    """A fresh ComfyUI input folder that does not exist yet (as on a fresh install before any upload)."""
    import folder_paths

    path = tmp_path / "input"
    if hasattr(folder_paths, "set_base"):
        folder_paths.input_directory = str(path)
    else:
        folder_paths.set_input_directory(str(path))
    return path


def test_the_example_is_offered_and_loads_on_a_fresh_input_folder(input_dir):
    choices = pack.NODE_CLASS_MAPPINGS["AmbientLoadImage"].INPUT_TYPES()["required"]["image"][0]
    assert choices == ["example_beach.jpg"]
    (image,) = run_node("AmbientLoadImage", image="example_beach.jpg")
    assert image.dtype.is_floating_point and image.ndim == 4 and image.shape[0] == 1 and image.shape[3] == 3
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0 and float(image.std()) > 0.05
    copied = input_dir / "example_beach.jpg"  # copied where ComfyUI's preview looks for it
    assert copied.read_bytes() == open(EXAMPLE, "rb").read()


def test_a_users_own_file_of_that_name_wins_and_is_never_overwritten(input_dir):
    from PIL import Image

    input_dir.mkdir()
    Image.new("RGB", (8, 6), (255, 0, 0)).save(input_dir / "example_beach.jpg", format="PNG")
    before = (input_dir / "example_beach.jpg").read_bytes()
    Image.new("RGB", (4, 4), (0, 0, 255)).save(input_dir / "mine.png")
    choices = pack.NODE_CLASS_MAPPINGS["AmbientLoadImage"].INPUT_TYPES()["required"]["image"][0]
    assert choices == ["example_beach.jpg", "mine.png"]
    (image,) = run_node("AmbientLoadImage", image="example_beach.jpg")
    assert tuple(image.shape) == (1, 6, 8, 3) and float(image[..., 0].mean()) > 0.99
    assert (input_dir / "example_beach.jpg").read_bytes() == before


def test_a_missing_picture_says_what_to_do(input_dir):
    with pytest.raises(ValueError, match=r'Load Image \(or Example\): image "gone.png" is not in .*Upload it'):
        run_node("AmbientLoadImage", image="gone.png")
    assert not input_dir.exists()  # nothing created for a refused name


def test_the_node_reruns_when_the_picture_changes(input_dir):
    from PIL import Image

    cls = pack.NODE_CLASS_MAPPINGS["AmbientLoadImage"]
    input_dir.mkdir()
    Image.new("RGB", (4, 4)).save(input_dir / "a.png")
    first = cls.IS_CHANGED(image="a.png")
    Image.new("RGB", (5, 4)).save(input_dir / "a.png")
    assert cls.IS_CHANGED(image="a.png") != first
