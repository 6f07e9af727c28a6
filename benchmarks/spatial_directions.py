"""Listen-proxy for the spatial decode: a noise source panned once around the listener (AmbiX), its decoded
direction and its binaural cues over time. Prints the direction errors of the energy vector (rE), the binaural ITD
(cross-correlation of the ears, per 100 ms) against Woodworth's, and the high-band ILD; writes a PNG (PIL only).

    python benchmarks/spatial_directions.py [OUT.png]
"""
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
from pack_loader import load_pack_nodes  # noqa: E402

RATE = 48000
SECONDS = 8.0
FRAME = 0.1


def panned_source(sp, seconds=SECONDS):
    """White noise whose azimuth turns from 0 (front) through +90 (left), 180, -90 (right) back to the front."""
    import torch

    n = int(seconds * RATE)
    s = np.random.default_rng(7).standard_normal(n) * 0.1
    azimuth = (np.arange(n) / n * 360.0 + 180.0) % 360.0 - 180.0
    theta = np.radians(azimuth)
    ambix = np.stack([s, s * np.sin(theta), np.zeros(n), s * np.cos(theta)])
    return torch.from_numpy(ambix[None].astype(np.float32)), azimuth


def woodworth_ms(sp, azimuth_deg):
    lateral = math.asin(math.sin(math.radians(azimuth_deg)))
    return 1000 * sp.HEAD_RADIUS_M / sp.SPEED_OF_SOUND * (math.sin(lateral) + lateral)


def frame_cues(left, right, hop):
    """Per frame: ITD in ms (how much the right ear lags the left; parabolic peak) and the ILD above 1.5 kHz."""
    itds, ilds = [], []
    freqs = np.fft.rfftfreq(hop, 1 / RATE)
    for start in range(0, len(left) - hop + 1, hop):
        a, b = left[start:start + hop], right[start:start + hop]
        xc = np.fft.irfft(np.fft.rfft(b, 2 * hop) * np.conj(np.fft.rfft(a, 2 * hop)))
        xc = np.concatenate([xc[-60:], xc[:61]])
        i = min(max(int(np.argmax(xc)), 1), len(xc) - 2)
        y0, y1, y2 = xc[i - 1:i + 2]
        itds.append((i - 60 + 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2)) / RATE * 1000)
        fa, fb = np.abs(np.fft.rfft(a)) ** 2, np.abs(np.fft.rfft(b)) ** 2
        ilds.append(10 * np.log10(fa[freqs > 1500].sum() / fb[freqs > 1500].sum()))
    return np.array(itds), np.array(ilds)


def draw(path, truth, estimated, itd, itd_model, ild):
    from PIL import Image, ImageDraw

    w, h, pad = 800, 600, 50
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    panels = [("azimuth (deg): model line, rE dots", truth, estimated, -180, 180),
              ("ITD (ms, + = left ear first): Woodworth line, binaural dots", itd_model, itd, -0.8, 0.8),
              ("ILD above 1.5 kHz (dB, + = left louder)", None, ild, -25, 25)]
    ph = (h - pad) // 3
    for k, (title, line, dots, lo, hi) in enumerate(panels):
        top = pad // 2 + k * ph
        box = (pad, top + 15, w - 10, top + ph - 10)
        d.rectangle(box, outline="black")
        d.text((pad, top), title, fill="black")
        d.text((5, box[1]), f"{hi:g}", fill="black")
        d.text((5, box[3] - 10), f"{lo:g}", fill="black")

        def xy(i, v, n, box=box, lo=lo, hi=hi):
            return (box[0] + (box[2] - box[0]) * i / max(1, n - 1),
                    box[3] - (box[3] - box[1]) * (min(max(v, lo), hi) - lo) / (hi - lo))
        zero = xy(0, 0.0, 2)[1]
        d.line([(box[0], zero), (box[2], zero)], fill=(200, 200, 200))
        if line is not None:
            d.line([xy(i, v, len(line)) for i, v in enumerate(line)], fill=(0, 90, 200), width=2)
        for i, v in enumerate(dots):
            x, y = xy(i, v, len(dots))
            d.ellipse([x - 2, y - 2, x + 2, y + 2], fill=(220, 40, 40))
    d.text((pad, h - 18), f"a source panned once around the listener in {SECONDS:g} s (front, left, back, right)",
           fill="black")
    img.save(path)


def main() -> int:
    load_pack_nodes()
    import importlib

    sp = importlib.import_module("ambient_nodes.audio.spatial")
    ambix, azimuth = panned_source(sp)
    hop = int(FRAME * RATE)
    centres = azimuth[hop // 2::hop][: ambix.shape[-1] // hop]
    estimated = sp.energy_directions(ambix, RATE, FRAME)[0, :, 0]
    error = np.abs((estimated - centres + 180) % 360 - 180)
    left, right = sp.decode_binaural(ambix, RATE)[0].numpy().astype(np.float64)
    itd, ild = frame_cues(left, right, hop)
    model = np.array([woodworth_ms(sp, a) for a in centres])
    # the frame's source moves 4.5 deg: compare against the model at the frame centre
    print(f"rE direction error over {len(error)} frames: mean {error.mean():.3f} deg, max {error.max():.3f} deg")
    side = np.abs(np.abs(centres) - 90) < 5
    print(f"binaural ITD near +-90 deg: {itd[side & (centres > 0)].mean():.4f} ms (left), "
          f"{itd[side & (centres < 0)].mean():.4f} ms (right); Woodworth {woodworth_ms(sp, 90):.4f} ms")
    print(f"ITD error against Woodworth over all frames: mean {np.abs(itd - model).mean():.4f} ms, "
          f"max {np.abs(itd - model).max():.4f} ms")
    print(f"ILD above 1.5 kHz near +90: {ild[side & (centres > 0)].mean():.2f} dB, near -90: "
          f"{ild[side & (centres < 0)].mean():.2f} dB")
    path = sys.argv[1] if len(sys.argv) > 1 else "spatial_directions.png"
    draw(path, centres, estimated, itd, model, ild)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
