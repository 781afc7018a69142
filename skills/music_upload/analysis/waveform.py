"""Waveform peaks in BBC audiowaveform JSON (v2, 8-bit) for the player, built while streaming.

The pixel width comes from the header's frame count. When that is only an estimate and the real
stream runs long, finished pixels are merged pairwise (doubling ``samples_per_pixel``), so the
state stays at a few thousand numbers whatever the decoder delivers.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np

TARGET_PIXELS: Final = 900
"""min/max pairs for a whole track: 1,800 values, enough for a full-width player."""


class WaveformBuilder:
    """Feed mono float blocks to :meth:`add`; :meth:`result` gives the audiowaveform dict."""

    def __init__(self, sample_rate: int, expected_frames: int, pixels: int = TARGET_PIXELS) -> None:
        self.sample_rate = sample_rate
        self.samples_per_pixel = max(1, math.ceil(expected_frames / pixels))
        self._max_pixels = 2 * pixels
        self._mins: list[float] = []
        self._maxs: list[float] = []
        self._open_min = math.inf
        self._open_max = -math.inf
        self._open_n = 0

    def add(self, mono: np.ndarray) -> None:
        """Fold one block of the mono mix into per-pixel minima and maxima."""
        n = len(mono)
        start = 0
        while start < n:
            spp = self.samples_per_pixel
            need = spp - self._open_n
            if self._open_n or n - start < spp:
                piece = mono[start : start + need]
                self._open_min = min(self._open_min, float(piece.min()))
                self._open_max = max(self._open_max, float(piece.max()))
                self._open_n += len(piece)
                start += len(piece)
                if self._open_n == spp:
                    self._close_open_pixel()
                continue
            room = self._max_pixels - len(self._mins)
            full = min((n - start) // spp, room)
            rows = mono[start : start + full * spp].reshape(full, spp)
            self._mins.extend(rows.min(axis=1).tolist())
            self._maxs.extend(rows.max(axis=1).tolist())
            start += full * spp
            self._halve_if_full()

    def _close_open_pixel(self) -> None:
        self._mins.append(self._open_min)
        self._maxs.append(self._open_max)
        self._open_min, self._open_max, self._open_n = math.inf, -math.inf, 0
        self._halve_if_full()

    def _halve_if_full(self) -> None:
        """Merge pixel pairs once the stream has outrun the header's frame count by 2x."""
        if len(self._mins) < self._max_pixels:
            return
        spp = self.samples_per_pixel
        if len(self._mins) % 2:  # the odd last pixel becomes the first half of the open one
            self._open_min = min(self._open_min, self._mins.pop())
            self._open_max = max(self._open_max, self._maxs.pop())
            self._open_n += spp
        self._mins = [min(a, b) for a, b in zip(self._mins[::2], self._mins[1::2], strict=True)]
        self._maxs = [max(a, b) for a, b in zip(self._maxs[::2], self._maxs[1::2], strict=True)]
        self.samples_per_pixel = 2 * spp

    def result(self) -> dict[str, Any]:
        """``{"version": 2, ..., "data": [min, max, ...]}`` with signed 8-bit peaks."""
        mins, maxs = list(self._mins), list(self._maxs)
        if self._open_n:
            mins.append(self._open_min)
            maxs.append(self._open_max)
        pairs = np.empty((len(mins), 2), dtype=np.float64)
        pairs[:, 0], pairs[:, 1] = mins, maxs
        # audiowaveform's 8-bit peaks are 16-bit samples divided by 256: truncate toward zero.
        data = np.clip(np.trunc(pairs * 128.0), -128, 127).astype(np.int64).ravel().tolist()
        return {
            "version": 2,
            "channels": 1,
            "sample_rate": self.sample_rate,
            "samples_per_pixel": self.samples_per_pixel,
            "bits": 8,
            "length": len(mins),
            "data": data,
        }
