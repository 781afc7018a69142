"""Tempo estimate: a spectral-flux onset envelope built while streaming, then autocorrelation.

Only the envelope is kept (200 float32 values per second of audio), never the PCM.

The flux is taken over log-spaced bands so a kick drum counts as much as a hi-hat. The tempo is
the lag in 60-200 BPM with the strongest autocorrelation at one and two periods, weighted by a
mild prior around 120 BPM; then, while the double tempo is still in range and nearly as periodic,
the faster one wins. On a click track every slower metre is equally periodic, so only that last
rule tells 174 from 87: a candidate whose half-period is just as strong is counting every other
beat.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

ENVELOPE_RATE_HZ: Final = 200.0
MIN_BPM: Final = 60.0
MAX_BPM: Final = 200.0
MAX_ANALYSED_S: Final = 600.0
"""Only the first ten minutes feed the estimate: plenty for a tempo, and CPU stays bounded."""
MIN_ANALYSED_S: Final = 4.0
MIN_PERIODICITY: Final = 0.1
"""Normalised autocorrelation below which there is no beat worth reporting (ambient, noise)."""
MIN_ONSET_STRENGTH: Final = 0.005
"""Envelope spread below which nothing happens: a steady tone or near-silence, whose tiny
spectral-leakage flicker would otherwise autocorrelate into a bogus tempo."""
PRIOR_CENTRE_BPM: Final = 120.0
PRIOR_WIDTH_OCTAVES: Final = 1.0
DOUBLE_TIME_RATIO: Final = 0.8
"""Take the double tempo when its periodicity is at least this share of the chosen one's."""
_BANDS: Final = 24
_BAND_RANGE_HZ: Final = (30.0, 11000.0)
_LOG_GAIN: Final = 100.0  # log(1 + 100·|X|): compress so quiet onsets still count


def log_bands(sample_rate: int, n_fft: int) -> tuple[slice, np.ndarray, np.ndarray]:
    """How to average rfft bins into log-spaced bands: (bins used, band starts, band sizes).

    Bands are contiguous runs of bins, so ``np.add.reduceat`` sums them without a matmul (BLAS
    threads spin and cost more than they save on a busy two-core worker).
    """
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = np.geomspace(_BAND_RANGE_HZ[0], min(_BAND_RANGE_HZ[1], sample_rate / 2), _BANDS + 1)
    band_of_bin = np.searchsorted(edges, freqs, side="right") - 1
    used = np.flatnonzero((band_of_bin >= 0) & (band_of_bin < _BANDS))
    bins = slice(int(used[0]), int(used[-1]) + 1)
    ids = band_of_bin[bins]
    starts = np.flatnonzero(np.diff(ids, prepend=-1))
    sizes = np.diff(np.append(starts, len(ids))).astype(np.float32)
    return bins, starts, sizes


class OnsetEnvelope:
    """Band-wise spectral flux of the mono mix at ~200 Hz; :meth:`add` blocks, then :meth:`bpm`."""

    def __init__(self, sample_rate: int, *, max_seconds: float = MAX_ANALYSED_S) -> None:
        self.hop = max(1, round(sample_rate / ENVELOPE_RATE_HZ))
        self.frame_rate = sample_rate / self.hop
        self.n_fft = 1 << max(6, round(math.log2(sample_rate * 0.023)))  # ~23 ms window
        self._window = np.hanning(self.n_fft).astype(np.float32)
        self._bins, self._band_starts, self._band_sizes = log_bands(sample_rate, self.n_fft)
        self._max_frames = int(max_seconds * self.frame_rate)
        self._tail = np.zeros(self.n_fft // 2, dtype=np.float32)  # centres the first frame on t=0
        self._previous: np.ndarray | None = None
        self._chunks: list[np.ndarray] = []
        self._frames = 0

    def add(self, mono: np.ndarray) -> None:
        """Turn one block into onset-strength values; leftover samples wait for the next block."""
        if self._frames >= self._max_frames:
            return
        buffer = np.concatenate((self._tail, mono.astype(np.float32, copy=False)))
        count = 0 if len(buffer) < self.n_fft else 1 + (len(buffer) - self.n_fft) // self.hop
        count = min(count, self._max_frames - self._frames)
        if count:
            frames = sliding_window_view(buffer, self.n_fft)[:: self.hop][:count]
            magnitude = np.abs(np.fft.rfft(frames * self._window, axis=1))
            sums = np.add.reduceat(magnitude[:, self._bins], self._band_starts, axis=1)
            bands = np.log1p(_LOG_GAIN * (sums / self._band_sizes))
            previous = bands[:1] if self._previous is None else self._previous[np.newaxis]
            rise = np.diff(np.concatenate((previous, bands)), axis=0)
            self._chunks.append(np.maximum(rise, 0.0).mean(axis=1).astype(np.float32))
            self._previous = bands[-1].copy()
            self._frames += count
        self._tail = buffer[count * self.hop :].copy()

    def envelope(self) -> np.ndarray:
        """The onset-strength envelope collected so far."""
        if not self._chunks:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(self._chunks)

    def bpm(self) -> float | None:
        """The tempo estimate, or None when too short or without a clear pulse."""
        return estimate_bpm(self.envelope(), self.frame_rate)


def autocorrelation(envelope: np.ndarray, max_lag: int) -> np.ndarray:
    """Unbiased autocorrelation for lags 0..max_lag, normalised to r[0] = 1, by direct products.

    Unbiased (divided by the overlap) so one and two periods compare fairly. Direct products need
    no FFT buffer several times the envelope's size, and multiply-then-sum into one scratch buffer
    avoids BLAS (see :func:`log_bands`); a few hundred lags take milliseconds.
    """
    x = envelope.astype(np.float64)
    n = len(x)
    scratch = np.empty(n)
    r = np.empty(max_lag + 1)
    for lag in range(max_lag + 1):
        product = np.multiply(x[: n - lag], x[lag:], out=scratch[: n - lag])
        r[lag] = product.sum() / (n - lag)
    return r / r[0] if r[0] > 0 else np.zeros_like(r)


def estimate_bpm(
    envelope: np.ndarray, frame_rate: float, min_bpm: float = MIN_BPM, max_bpm: float = MAX_BPM
) -> float | None:
    """Tempo in BPM (1 decimal) from an onset envelope sampled at ``frame_rate``."""
    if len(envelope) < MIN_ANALYSED_S * frame_rate:
        return None
    # Remove the slow loudness contour (1 s moving average) so only the pulse remains.
    width = max(1, round(frame_rate))
    detrended = envelope - np.convolve(envelope, np.ones(width) / width, mode="same")
    if float(np.std(detrended)) < MIN_ONSET_STRENGTH:
        return None
    lag_min = max(2, math.floor(60.0 * frame_rate / max_bpm))
    lag_max = math.ceil(60.0 * frame_rate / min_bpm)
    max_lag = min(4 * lag_max + 4, len(detrended) // 2)
    if max_lag < 2 * lag_max + 1:
        return None
    r = autocorrelation(detrended, max_lag)
    lags = np.arange(lag_min, lag_max + 1)
    octaves_from_centre = np.log2(60.0 * frame_rate / lags / PRIOR_CENTRE_BPM)
    prior = np.exp(-0.5 * (octaves_from_centre / PRIOR_WIDTH_OCTAVES) ** 2)
    score = (r[lags] + 0.5 * r[2 * lags]) * prior
    lag = int(lags[int(np.argmax(score))])
    while lag / 2 >= 60.0 * frame_rate / max_bpm and _peak_near(r, lag / 2) >= (
        DOUBLE_TIME_RATIO * r[lag]
    ):
        lag = round(lag / 2)
    if r[lag] < MIN_PERIODICITY:
        return None
    return round(60.0 * frame_rate / _refine_period(r, lag), 1)


def _peak_near(r: np.ndarray, lag: float) -> float:
    """The highest autocorrelation within a frame of a fractional lag (peaks are narrow)."""
    return float(r[max(0, math.floor(lag) - 1) : math.ceil(lag) + 2].max())


def _refine_period(r: np.ndarray, lag: int) -> float:
    """Sub-frame beat period: least-squares fit through the peaks near lag, 2·lag, 3·lag, 4·lag."""
    peaks: list[tuple[int, float]] = []
    for k in range(1, 5):
        radius = k // 2 + 1
        lo, hi = k * lag - radius, k * lag + radius
        if lo < 1 or hi + 1 >= len(r):
            break
        i = lo + int(np.argmax(r[lo : hi + 1]))
        peaks.append((k, i + _parabolic_offset(r, i)))
    if not peaks:
        return float(lag)
    return sum(k * p for k, p in peaks) / sum(k * k for k, _ in peaks)


def _parabolic_offset(r: np.ndarray, i: int) -> float:
    """Offset of the vertex of the parabola through r[i-1], r[i], r[i+1], in [-0.5, 0.5]."""
    a, b, c = r[i - 1], r[i], r[i + 1]
    denom = a - 2.0 * b + c
    if denom >= 0:  # not a maximum
        return 0.0
    return float(np.clip(0.5 * (a - c) / denom, -0.5, 0.5))
