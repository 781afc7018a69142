"""Integrated loudness per ITU-R BS.1770-4, measured while streaming.

Only the K-weighted energy of each 100 ms step is kept (36,000 floats for an hour), because a
400 ms gating block with 75 % overlap is exactly four consecutive steps.
"""

from __future__ import annotations

import math
from array import array
from typing import Final

import numpy as np
from scipy.signal import sosfilt

ABSOLUTE_GATE_LUFS: Final = -70.0
RELATIVE_GATE_LU: Final = -10.0
STEPS_PER_BLOCK: Final = 4  # 400 ms blocks, 100 ms hop


def k_weighting_sos(sample_rate: int) -> np.ndarray:
    """Second-order sections of the K-weighting filter (shelf + RLB high-pass) at any rate.

    BS.1770 only tabulates 48 kHz coefficients; these are the same analogue prototypes put
    through the bilinear transform (as libebur128 does), so they match the table at 48 kHz.
    """
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / sample_rate)
    vh = 10.0 ** (gain_db / 20.0)
    vb = vh**0.4996667741545416
    a0 = 1.0 + k / q + k * k
    shelf = [
        (vh + vb * k / q + k * k) / a0, 2.0 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0,
        1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0,
    ]  # fmt: skip
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / sample_rate)
    a0 = 1.0 + k / q + k * k
    highpass = [1.0, -2.0, 1.0, 1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0]
    return np.array([shelf, highpass], dtype=np.float64)


def channel_weights(channels: int) -> np.ndarray:
    """BS.1770 weights: 1.0 for L/R/C, 1.41 for surrounds, 0 for the LFE (L R C LFE Ls Rs)."""
    if channels == 5:
        return np.array([1.0, 1.0, 1.0, 1.41, 1.41])
    if channels == 6:
        return np.array([1.0, 1.0, 1.0, 0.0, 1.41, 1.41])
    return np.ones(channels)


class LoudnessMeter:
    """Feed ``(frames, channels)`` blocks to :meth:`add`, then read :meth:`integrated`."""

    def __init__(self, sample_rate: int, channels: int) -> None:
        self._sos = k_weighting_sos(sample_rate)
        self._zi = np.zeros((self._sos.shape[0], 2, channels))
        self._weights = channel_weights(channels)
        self._step = max(1, round(sample_rate / 10))
        self._steps = array("d")  # weighted sum of squares of each complete 100 ms step
        self._open_sum = 0.0
        self._open_n = 0
        self._total_sum = 0.0
        self._total_n = 0

    def add(self, block: np.ndarray) -> None:
        """K-weight one block (filter state carries over) and bank its energy per 100 ms step."""
        filtered, self._zi = sosfilt(self._sos, block, axis=0, zi=self._zi)
        np.square(filtered, out=filtered)
        power = filtered[:, 0] * self._weights[0]  # weighted channel sum, without BLAS threads
        for channel in range(1, filtered.shape[1]):
            power += filtered[:, channel] * self._weights[channel]
        self._total_sum += float(power.sum())
        self._total_n += len(power)
        step, n = self._step, len(power)
        need = step - self._open_n
        if n < need:
            self._open_sum += float(power.sum())
            self._open_n += n
            return
        self._steps.append(self._open_sum + float(power[:need].sum()))
        full = (n - need) // step
        end = need + full * step
        if full:
            self._steps.extend(power[need:end].reshape(full, step).sum(axis=1).tolist())
        self._open_sum = float(power[end:].sum())
        self._open_n = n - end

    def integrated(self) -> float | None:
        """Gated integrated loudness in LUFS, or None for digital silence.

        A file shorter than one 400 ms block is measured as a single block over all of it.
        """
        steps = np.frombuffer(self._steps, dtype=np.float64)
        if len(steps) >= STEPS_PER_BLOCK:
            sums = np.convolve(steps, np.ones(STEPS_PER_BLOCK), mode="valid")
            powers = sums / (STEPS_PER_BLOCK * self._step)
        elif self._total_n:
            powers = np.array([self._total_sum / self._total_n])
        else:
            return None
        with np.errstate(divide="ignore"):
            loudness = -0.691 + 10.0 * np.log10(powers)
        gated = powers[loudness > ABSOLUTE_GATE_LUFS]
        if len(gated) == 0:
            return None
        relative_gate = -0.691 + 10.0 * math.log10(float(gated.mean())) + RELATIVE_GATE_LU
        gated = powers[(loudness > ABSOLUTE_GATE_LUFS) & (loudness > relative_gate)]
        return -0.691 + 10.0 * math.log10(float(gated.mean()))
