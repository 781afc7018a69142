"""Audio analysis for the music-upload skill: one streaming pass over an uploaded file yields
everything a track needs (duration, sample rate, channels, bitrate, BPM, loudness, waveform,
cover thumbnail), with memory bounded by the block size rather than the track length.

Importing this package is cheap (sniffing and the error type only): numpy, scipy and the decoders
load on the first :func:`analyse` call, so the API process can sniff uploads without them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from skills.music_upload.analysis.errors import AnalysisError, ErrorCode
from skills.music_upload.analysis.sniff import (
    CONTENT_TYPE_FORMATS,
    HEAD_BYTES,
    check_declared_type,
    formats_for_content_type,
    sniff_file,
    sniff_format,
)

__all__ = [
    "CONTENT_TYPE_FORMATS",
    "HEAD_BYTES",
    "AnalysisError",
    "AnalysisResult",
    "ErrorCode",
    "ProgressCallback",
    "analyse",
    "check_declared_type",
    "formats_for_content_type",
    "sniff_file",
    "sniff_format",
]

ProgressCallback = Callable[[float], None]

PROGRESS_STEP: Final = 0.02
"""Report decoding progress every 2 %: often enough for a progress bar, rare enough for Redis."""
_DECODE_SHARE: Final = 0.9  # the streaming pass is nearly all the work; tempo and cover follow
# The header's frame count may be an estimate (MP3 without a Xing header, ADTS): only refuse
# up front when it is clearly over; the exact check happens on the decoded frames.
_HEADER_LENGTH_SLACK: Final = 1.02
_MIN_BITRATE: Final = 6000
"""bits/s, below any real codec's floor: a header claiming more audio than the file could hold at
this rate is corrupt, so it decides neither TOO_LONG nor the waveform's pixel width."""


@dataclass(frozen=True, slots=True)
class AnalysisResult:
    """What processing stores on the track. ``bpm``/``loudness_lufs`` are None for silence."""

    format: str
    duration_ms: int
    sample_rate: int
    channels: int
    bitrate: int
    bpm: float | None
    loudness_lufs: float | None
    waveform: dict[str, Any]
    cover: bytes | None = field(default=None, repr=False)
    """JPEG thumbnail of the embedded artwork, for the caller to store and link as cover_url."""

    def track_fields(self) -> dict[str, Any]:
        """The Track columns this result fills (everything except the cover bytes)."""
        return {
            "duration_ms": self.duration_ms,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "bitrate": self.bitrate,
            "bpm": self.bpm,
            "loudness_lufs": self.loudness_lufs,
            "waveform": self.waveform,
        }


def analyse(
    path: Path | str,
    *,
    declared_type: str | None = None,
    max_duration_s: float,
    progress: ProgressCallback | None = None,
) -> AnalysisResult:
    """Sniff, validate and measure an uploaded audio file in a single decoding pass.

    Raises :class:`AnalysisError` with a reason a person can read when the file cannot become a
    track. ``progress`` receives fractions in [0, 1], every few percent, from this thread; an
    exception it raises aborts the analysis (so a cancelled job can stop early).
    OSError on the file itself (missing, unreadable) is left to the caller: it is not the
    uploader's fault and may be worth a retry.
    """
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise AnalysisError(ErrorCode.EMPTY_AUDIO, "The file is empty.")
    fmt = sniff_file(path)
    if fmt is None:
        raise AnalysisError(
            ErrorCode.UNSUPPORTED_FORMAT,
            "The file is not audio in a supported format (MP3, WAV, FLAC, OGG, AAC or M4A).",
        )
    if declared_type is not None:
        check_declared_type(declared_type, fmt)
    report = _Progress(progress)
    report(0.0, force=True)

    from skills.music_upload.analysis.cover import extract_cover

    measured = _measure(path, fmt, size, max_duration_s, report)
    cover = extract_cover(path)
    report(1.0, force=True)
    seconds = measured.frames / measured.sample_rate
    return AnalysisResult(
        format=fmt,
        duration_ms=round(seconds * 1000),
        sample_rate=measured.sample_rate,
        channels=measured.channels,
        bitrate=measured.nominal_bitrate or round(size * 8 / seconds),
        bpm=measured.bpm,
        loudness_lufs=None if measured.lufs is None else round(measured.lufs, 2),
        waveform=measured.waveform,
        cover=cover,
    )


@dataclass(frozen=True, slots=True)
class _Measured:
    sample_rate: int
    channels: int
    frames: int
    nominal_bitrate: int | None
    bpm: float | None
    lufs: float | None
    waveform: dict[str, Any]


class _Progress:
    """Throttles the caller's callback to one call per :data:`PROGRESS_STEP`."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self._last = -1.0

    def __call__(self, fraction: float, *, force: bool = False) -> None:
        if self._callback is None:
            return
        fraction = min(max(fraction, 0.0), 1.0)
        if force or fraction - self._last >= PROGRESS_STEP:
            self._last = fraction
            self._callback(fraction)


def _measure(
    path: Path, fmt: str, size: int, max_duration_s: float, report: _Progress
) -> _Measured:
    """The streaming pass: every block feeds the waveform, loudness and onset state, then goes."""
    from skills.music_upload.analysis.decode import mix_down, open_stream
    from skills.music_upload.analysis.loudness import LoudnessMeter
    from skills.music_upload.analysis.tempo import OnsetEnvelope
    from skills.music_upload.analysis.waveform import WaveformBuilder

    with open_stream(path, fmt) as stream:
        info = stream.info
        rate, channels = info.sample_rate, info.channels
        max_frames = math.floor(max_duration_s * rate)
        expected = info.frames
        if info.nominal_bitrate is None:
            expected = min(expected, math.ceil(size * 8 / _MIN_BITRATE * rate))
        if expected == info.frames and expected > max_frames * _HEADER_LENGTH_SLACK:
            raise _too_long(expected / rate, max_duration_s)
        waveform = WaveformBuilder(rate, expected)
        meter = LoudnessMeter(rate, channels)
        onsets = OnsetEnvelope(rate)
        frames = 0
        for block in stream.blocks():
            frames += len(block)
            if frames > max_frames:
                raise _too_long(None, max_duration_s)
            mono = block[:, 0] if channels == 1 else mix_down(block)
            waveform.add(mono)
            meter.add(block)
            onsets.add(mono)
            if expected:
                report(_DECODE_SHARE * min(frames / expected, 1.0))
    if frames == 0:
        raise AnalysisError(ErrorCode.EMPTY_AUDIO, "The file contains no audio.")
    bpm = onsets.bpm()
    report(0.95)
    return _Measured(
        sample_rate=rate,
        channels=channels,
        frames=frames,
        nominal_bitrate=info.nominal_bitrate,
        bpm=bpm,
        lufs=meter.integrated(),
        waveform=waveform.result(),
    )


def _too_long(seconds: float | None, max_duration_s: float) -> AnalysisError:
    """``seconds`` is None when decoding overran a header that understated the length."""
    length = "longer than that" if seconds is None else f"{_clock(seconds)} long"
    return AnalysisError(
        ErrorCode.TOO_LONG,
        f"Tracks may be at most {_clock(max_duration_s)} long; this one is {length}.",
    )


def _clock(seconds: float) -> str:
    """``3725.4`` -> ``"1:02:05"``, ``185`` -> ``"3:05"``."""
    total = math.ceil(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
