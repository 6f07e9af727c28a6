"""Pictures of audio: a waveform strip over a log-frequency STFT spectrogram (numpy + PIL, no ComfyUI)."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def _colour(v):
    """0..1 -> RGB uint8 (a dark-blue -> magenta -> yellow ramp)."""
    import numpy as np

    stops = np.array([[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21],
                      [250, 193, 39], [252, 255, 164]], dtype=np.float32)
    x = np.clip(v, 0, 1) * (len(stops) - 1)
    i = np.minimum(x.astype(int), len(stops) - 2)
    f = (x - i)[..., None]
    return (stops[i] * (1 - f) + stops[i + 1] * f).astype(np.uint8)


def render_spectrogram(waveform: "torch.Tensor", sample_rate: int, *, width: int = 1024, height: int = 512,
                       title: str = "", n_fft: int = 2048, floor_db: float = -90.0):
    """Render one clip ``float [C, T]`` as an RGB PIL image: waveform (top fifth) and spectrogram of the channel
    mean (of W for a 4-channel AmbiX clip), log-frequency axis from 20 Hz to Nyquist, magnitude in dB relative to full scale, clipped at ``floor_db``.
    """
    import numpy as np
    from PIL import Image, ImageDraw

    x = waveform.detach().float().cpu().numpy()
    x = np.nan_to_num(x.reshape(-1, x.shape[-1]))
    mono = x[0] if x.shape[0] == 4 else x.mean(axis=0)  # a 4-channel clip is AmbiX: its W channel
    wave_h = height // 5
    spec_h = height - wave_h
    # STFT with a Hann window; columns resampled to the image width
    n_fft = int(min(n_fft, max(64, 2 ** int(np.log2(max(64, len(mono)))))))
    pad = np.pad(mono, (n_fft // 2, n_fft // 2))
    starts = np.linspace(0, max(0, len(pad) - n_fft), num=width).astype(int) if len(pad) > n_fft else np.zeros(1, int)
    frames = np.stack([pad[s:s + n_fft] if s + n_fft <= len(pad) else np.pad(pad[s:], (0, s + n_fft - len(pad)))
                       for s in starts])
    window = np.hanning(n_fft).astype(np.float32)
    mag = np.abs(np.fft.rfft(frames * window, axis=1)) / (window.sum() / 2)
    db = 20 * np.log10(np.maximum(mag, 1e-12))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    lo, hi = np.log10(20.0), np.log10(max(21.0, sample_rate / 2))
    rows = 10 ** np.linspace(hi, lo, spec_h)  # top row = highest frequency
    idx = np.clip(np.searchsorted(freqs, rows), 0, len(freqs) - 1)
    spec = (db[:, idx].T - floor_db) / -floor_db
    spec_img = _colour(spec)
    if spec_img.shape[1] != width:
        spec_img = np.asarray(Image.fromarray(spec_img).resize((width, spec_h), Image.NEAREST))
    # waveform strip: per-column min/max of each column's span
    strip = np.full((wave_h, width, 3), 16, dtype=np.uint8)
    edges = np.linspace(0, len(mono), width + 1).astype(int)
    mid = wave_h // 2
    for col in range(width):
        seg = mono[edges[col]:max(edges[col] + 1, edges[col + 1])]
        if len(seg):
            top = int(mid - np.clip(seg.max(), -1, 1) * (mid - 1))
            bot = int(mid - np.clip(seg.min(), -1, 1) * (mid - 1))
            strip[top:bot + 1, col] = (120, 200, 255)
    img = Image.fromarray(np.concatenate([strip, spec_img], axis=0))
    draw = ImageDraw.Draw(img)
    seconds = len(mono) / sample_rate
    label = f"{title}  " if title else ""
    draw.text((6, 4), f"{label}{seconds:.2f} s, {sample_rate} Hz, {x.shape[0]} ch, peak {np.abs(x).max():.3f}",
              fill=(255, 255, 255))
    for f_hz in (100, 1000, 10000):
        if f_hz < sample_rate / 2:
            y = wave_h + int((hi - np.log10(f_hz)) / (hi - lo) * (spec_h - 1))
            draw.line([(0, y), (8, y)], fill=(255, 255, 255))
            draw.text((10, y - 6), f"{f_hz // 1000}k" if f_hz >= 1000 else str(f_hz), fill=(255, 255, 255))
    return img


def save_spectrogram_png(waveform: "torch.Tensor", sample_rate: int, path: str, title: str = "") -> str:
    """Render ``waveform [C, T]`` and write a PNG to ``path`` (created exclusively: never overwrites)."""
    import io

    buf = io.BytesIO()
    render_spectrogram(waveform, sample_rate, title=title).save(buf, format="PNG")
    with open(path, "xb") as f:
        f.write(buf.getvalue())
    return path
