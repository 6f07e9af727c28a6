"""A spatial scene from a picture: which sound comes from which direction (plain functions, no ComfyUI).

The picture is cut into regions around the listener (a 360 deg equirectangular panorama: sectors around the
horizon, the image centre straight ahead; a wide picture: left to right across a +-60 deg field of view). Each region
is captioned; :func:`plan_scene` turns the captions into per-direction source prompts with the layered prompt
builder, merging a sound heard in several regions into one source between them, plus a whole-picture bed.
Azimuths follow AmbiX: degrees, 0 = front, +90 = left.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..text.prompt import build_layered_prompts
from ..text.tables import DEFAULT_PRESET

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

NODE = "Spatial Scene from Image"
LAYOUTS = ("panorama 360", "wide picture")
WIDE_FIELD_DEG = 120.0  # a wide picture spans +-60 deg in front of the listener
MAX_SOURCES = 7  # Mix in Space takes 8 layers: the bed and 7 sources


@dataclass(frozen=True)
class Region:
    """One region: its crop box in pixels (``left`` may be negative or ``right`` past the width on a panorama:
    the crop wraps around) and the direction it is heard from."""

    left: int
    top: int
    right: int
    bottom: int
    azimuth_deg: float


@dataclass(frozen=True)
class SpatialPlan:
    """The scene: a diffuse ``bed`` prompt and per-direction ``prompts`` with their ``azimuths`` (degrees) and
    ``widths`` (degrees of arc they span); ``table`` is the readable plan."""

    bed: str
    prompts: tuple[str, ...]
    azimuths: tuple[float, ...]
    widths: tuple[float, ...]
    table: str


def check_layout(layout: str, regions) -> int:
    """``regions`` as an int, or a ``ValueError`` naming the node and the input."""
    if layout not in LAYOUTS:
        raise ValueError(f'{NODE}: "layout" is {layout!r} but must be one of {", ".join(LAYOUTS)}. Pick one.')
    if isinstance(regions, bool) or not isinstance(regions, int) or not 3 <= regions <= 8:
        raise ValueError(f'{NODE}: "regions" is {regions!r} but must be a whole number from 3 to 8. Pick e.g. 4.')
    return regions


def region_layout(width: int, height: int, layout: str, regions: int) -> list[Region]:
    """The regions of a ``width`` x ``height`` picture.

    ``panorama 360`` (equirectangular): ``regions`` sectors of ``360/regions`` deg, the first centred on the
    image centre (front), then turning right (azimuth ``-k 360/regions``); each crop is the sector's band around
    the horizon, as tall as the sector is wide in degrees (at most the whole height), where the projection is least
    stretched. ``wide picture``: ``regions`` vertical strips left to right, full height, azimuths from +60 deg
    (left edge side) to -60 deg across the field of view.
    """
    regions = check_layout(layout, regions)
    if layout == "wide picture":
        step = width / regions
        return [Region(round(k * step), 0, round((k + 1) * step), height,
                       WIDE_FIELD_DEG / 2 - (k + 0.5) * WIDE_FIELD_DEG / regions) for k in range(regions)]
    sector = 360.0 / regions
    band = min(height, round(height * sector / 180.0))
    top = (height - band) // 2
    out = []
    for k in range(regions):
        azimuth = -k * sector
        centre = width / 2 - azimuth / 360.0 * width  # +azimuth (left) is left of the image centre
        left = round(centre - width / regions / 2)
        out.append(Region(left, top, left + round(width / regions), top + band, (azimuth + 180.0) % 360.0 - 180.0))
    return out


def crop_regions(image: "torch.Tensor", regions: list[Region]) -> "torch.Tensor":
    """The crops of one ComfyUI image ``float [H, W, C]`` as a batch ``[N, h, w, C]`` (all the same size; columns
    outside the picture wrap around, as a panorama does)."""
    import torch

    width = image.shape[1]
    crops = []
    for r in regions:
        columns = torch.arange(r.left, r.right) % width
        crops.append(image[r.top:r.bottom].index_select(1, columns))
    return torch.stack(crops)


def circular_mean_deg(angles: list[float]) -> float:
    """The mean direction of ``angles`` (degrees), in -180..180 (the first angle when they cancel out)."""
    x = sum(math.cos(math.radians(a)) for a in angles)
    y = sum(math.sin(math.radians(a)) for a in angles)
    if math.hypot(x, y) < 1e-9 * len(angles):
        return angles[0]
    return math.degrees(math.atan2(y, x))


def _sources_of(caption: str, preset: str) -> list[tuple[tuple[str, str], str]]:
    """A region's candidate sources ``((kind, key), prompt)``: its own texture (the layered bed, keyed by its first
    phrase) and its first distinct event (keyed by the event's label)."""
    layered = build_layered_prompts(caption, preset, max_sources=1)
    found = [(("texture", layered.bed.split(",")[0].strip()), layered.bed)]
    if layered.sources:
        found.append((("event", layered.source_names[0]), layered.sources[0]))
    return found


def plan_scene(captions: list[str], azimuths: list[float], whole_caption: str = "", *,
               preset: str = DEFAULT_PRESET, sector_deg: float = 90.0, max_sources: int = MAX_SOURCES) -> SpatialPlan:
    """Per-direction source prompts from region captions.

    Args:
        captions: one caption per region, e.g. from BLIP on :func:`crop_regions`.
        azimuths: each region's azimuth (degrees, AmbiX: 0 front, +90 left), from :func:`region_layout`.
        whole_caption: the whole picture's caption, for the diffuse bed ("" = the regions' captions joined).
        preset: the prompt preset (see ``text/tables.py``).
        sector_deg: how wide one region is, for the sources' widths.
        max_sources: most sources kept (textures first, then events, in region order).

    Returns:
        a :class:`SpatialPlan`. A source found in several regions (the same texture or the same event label, e.g.
        gulls over three sea sectors) is kept once, at the circular mean of those regions' azimuths, its width the
        span of those regions. Deterministic.
    """
    if len(captions) != len(azimuths) or not captions:
        raise ValueError(f"{NODE}: {len(captions)} captions for {len(azimuths)} regions; give one per region.")
    found: dict[tuple[str, str], dict] = {}
    for index, (caption, azimuth) in enumerate(zip(captions, azimuths)):
        for key, prompt in _sources_of(caption, preset):
            entry = found.setdefault(key, {"prompt": prompt, "azimuths": [], "regions": []})
            entry["azimuths"].append(float(azimuth))
            entry["regions"].append(index + 1)
    ordered = sorted(found.items(), key=lambda kv: (kv[0][0] != "texture", kv[1]["regions"][0]))[:max_sources]
    bed = build_layered_prompts(whole_caption or ", ".join(captions), preset, max_sources=0).bed
    prompts, directions, widths, rows = [], [], [], [f"bed (diffuse, all around): {bed}"]
    for (kind, key), entry in ordered:
        azimuth = round(circular_mean_deg(entry["azimuths"]), 1)
        width = min(360.0, sector_deg * len(entry["azimuths"]))
        prompts.append(entry["prompt"])
        directions.append(azimuth)
        widths.append(width)
        regions = ", ".join(str(r) for r in entry["regions"])
        rows.append(f"{kind} {key!r}: azimuth {azimuth:+.1f} deg, width {width:.0f} deg, regions {regions}: "
                    f"{entry['prompt']}")
    rows += [f"region {i + 1} at {a:+.1f} deg: {c!r}" for i, (c, a) in enumerate(zip(captions, azimuths))]
    return SpatialPlan(bed, tuple(prompts), tuple(directions), tuple(widths), "\n".join(rows))


def caption_scene(caption: Callable, image: "torch.Tensor", layout: str, regions: int, preset: str = DEFAULT_PRESET,
                  on_step: Callable[[int, int], None] | None = None) -> SpatialPlan:
    """:func:`plan_scene` for one ComfyUI image ``float [H, W, C]``.

    ``caption(batch [N, h, w, C], on_step) -> N captions`` (e.g. BLIP's :func:`caption_images` bound to a model)
    is called on the region crops, then on the whole picture; ``on_step(done, total)`` sees ``regions + 1`` steps
    (raising from it stops the run: Cancel).
    """
    boxes = region_layout(image.shape[1], image.shape[0], layout, regions)
    total = regions + 1

    def part(offset: int, count: int):
        if on_step is None:
            return None
        return lambda done, sub_total: on_step(offset + (count * done) // max(1, sub_total), total)

    captions = caption(crop_regions(image, boxes), part(0, regions))
    whole = caption(image[None], part(regions, 1))[0]
    sector = 360.0 / regions if layout == "panorama 360" else WIDE_FIELD_DEG / regions
    plan = plan_scene(captions, [b.azimuth_deg for b in boxes], whole, preset=preset, sector_deg=sector)
    log.info("%s:\n%s", NODE, plan.table)
    return plan
