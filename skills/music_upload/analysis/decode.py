"""Decode an audio file into fixed-size float32 blocks, so memory never depends on track length.

libsndfile (via soundfile) reads WAV, FLAC, Ogg Vorbis/Opus and MP3; AAC and MP4/M4A go through
the ffmpeg binary that imageio-ffmpeg ships, streaming raw PCM through a pipe.
"""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Self

import numpy as np
import soundfile as sf

from skills.music_upload.analysis.errors import AnalysisError, ErrorCode

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

BLOCK_FRAMES: Final = 65536
"""Frames per decoded block: ~1.5 s at 44.1 kHz, 512 KiB for stereo float32."""

SOUNDFILE_FORMATS: Final = frozenset({"mp3", "wav", "flac", "ogg"})
FFMPEG_FORMATS: Final = frozenset({"aac", "mp4"})
MAX_CHANNELS: Final = 8
SAMPLE_RATE_RANGE: Final = (4000, 768_000)

_PCM_BITS: Final = {
    "PCM_U8": 8, "PCM_S8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32,
    "FLOAT": 32, "DOUBLE": 64, "ULAW": 8, "ALAW": 8,
}  # fmt: skip
_FFMPEG_TIMEOUT_S: Final = 60.0
_ERROR_PREFIX: Final = re.compile(r"^(?:error\s*:\s*)+", re.IGNORECASE)  # libsndfile's "Error : "


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What the container says before decoding; ``frames`` may be an estimate (MP3, AAC)."""

    sample_rate: int
    channels: int
    frames: int
    nominal_bitrate: int | None = None
    """bits/s for uncompressed PCM, where the container's rate is exact; None when compressed."""


def mix_down(block: np.ndarray) -> np.ndarray:
    """Mean of the channels as float32.

    Channel by channel on purpose: ``block.mean(axis=1)`` is slow on a 2-wide axis, and a matmul
    goes through BLAS, whose spinning worker threads cost several times the work itself on a
    busy two-core machine.
    """
    mono = block[:, 0].copy()
    for channel in range(1, block.shape[1]):
        mono += block[:, channel]
    mono *= np.float32(1.0 / block.shape[1])
    return mono


def check_layout(sample_rate: int, channels: int) -> None:
    """Refuse layouts the analysis cannot sensibly handle, before any decoding."""
    if sample_rate <= 0 or channels <= 0:
        raise corrupt(f"the header declares {channels} channels at {sample_rate} Hz")
    if channels > MAX_CHANNELS:
        raise AnalysisError(
            ErrorCode.UNSUPPORTED_FORMAT,
            f"The file has {channels} audio channels; at most {MAX_CHANNELS} are supported.",
        )
    low, high = SAMPLE_RATE_RANGE
    if not low <= sample_rate <= high:
        raise AnalysisError(
            ErrorCode.UNSUPPORTED_FORMAT,
            f"The sample rate of {sample_rate} Hz is not supported ({low}-{high} Hz).",
        )


def corrupt(reason: object) -> AnalysisError:
    """The error for a file the decoder rejects, with the decoder's own words as the reason."""
    text = _ERROR_PREFIX.sub("", str(reason).strip()).rstrip(".") or "unknown decoder error"
    return AnalysisError(ErrorCode.CORRUPT_AUDIO, f"The file could not be decoded: {text}.")


class AudioStream:
    """An open decoder: ``info`` up front, then :meth:`blocks` once. Use as a context manager."""

    info: StreamInfo

    def blocks(self) -> Iterator[np.ndarray]:
        """float32 ``(frames, channels)`` blocks; each is only valid until the next is read."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the file or the decoder process."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_stream(path: Path, fmt: str, *, block_frames: int = BLOCK_FRAMES) -> AudioStream:
    """Open ``path`` (already sniffed as ``fmt``) with the decoder that handles that format."""
    if fmt in SOUNDFILE_FORMATS:
        return SoundFileStream(path, block_frames)
    if fmt in FFMPEG_FORMATS:
        return FfmpegStream(path, block_frames)
    raise AnalysisError(ErrorCode.UNSUPPORTED_FORMAT, f"No decoder for {fmt!r} audio.")


class SoundFileStream(AudioStream):
    """libsndfile decoding into one reused buffer."""

    def __init__(self, path: Path, block_frames: int) -> None:
        try:
            self._file = sf.SoundFile(path)
        except (sf.SoundFileError, RuntimeError, ValueError, TypeError) as exc:
            raise corrupt(exc) from exc
        f = self._file
        try:
            check_layout(f.samplerate, f.channels)
        except AnalysisError:
            f.close()
            raise
        bits = _PCM_BITS.get(f.subtype) if f.format in ("WAV", "WAVEX", "RF64") else None
        self.info = StreamInfo(
            sample_rate=f.samplerate,
            channels=f.channels,
            frames=max(f.frames, 0),
            nominal_bitrate=f.samplerate * f.channels * bits if bits else None,
        )
        self._buffer = np.empty((block_frames, f.channels), dtype=np.float32)

    def blocks(self) -> Iterator[np.ndarray]:
        while True:
            try:
                # read(out=...) does not stop at the header's frame count, which is only an
                # estimate for some MP3s; it stops where the decoder runs dry.
                block = self._file.read(out=self._buffer)
            except (sf.SoundFileError, RuntimeError, ValueError) as exc:
                raise corrupt(exc) from exc
            if len(block) == 0:
                return
            yield block

    def close(self) -> None:
        self._file.close()


class FfmpegStream(AudioStream):
    """ffmpeg decoding to float32 PCM on a pipe; the process is killed if we stop early."""

    def __init__(self, path: Path, block_frames: int) -> None:
        self._exe = _ffmpeg_exe()
        self.info = probe_with_mutagen(path) or probe_with_ffmpeg(self._exe, path)
        check_layout(self.info.sample_rate, self.info.channels)
        self._path = path
        self._block_frames = block_frames
        self._proc: subprocess.Popen[bytes] | None = None
        # A file, not a pipe, so ffmpeg can never block on a full stderr; closed in close().
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115

    def blocks(self) -> Iterator[np.ndarray]:
        info = self.info
        cmd = [
            self._exe, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(self._path),
            "-map", "0:a:0", "-vn", "-sn", "-dn",
            "-f", "f32le", "-acodec", "pcm_f32le",
            "-ac", str(info.channels), "-ar", str(info.sample_rate), "pipe:1",
        ]  # fmt: skip
        self._proc = proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr
        )
        stdout = proc.stdout
        assert isinstance(stdout, io.BufferedReader)  # typeshed only promises IO[bytes]
        _enlarge_pipe(stdout.fileno())
        frame_bytes = 4 * info.channels
        raw = bytearray(self._block_frames * frame_bytes)
        view = memoryview(raw)
        while True:
            filled = 0
            while filled < len(raw):
                got = stdout.readinto(view[filled:])
                if not got:
                    break
                filled += got
            usable = filled - filled % frame_bytes
            if usable:
                yield np.frombuffer(raw, dtype="<f4", count=usable // 4).reshape(-1, info.channels)
            if filled < len(raw):
                break
        try:
            code = proc.wait(timeout=_FFMPEG_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            raise corrupt("the decoder did not finish") from exc
        if code != 0:
            raise corrupt(self._last_error() or f"ffmpeg exited with status {code}")

    def _last_error(self) -> str:
        self._stderr.seek(0)
        lines = self._stderr.read(64 * 1024).decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else ""

    def close(self) -> None:
        proc = self._proc
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        self._stderr.close()


def _enlarge_pipe(fd: int) -> None:
    """Let ffmpeg decode ~3 s ahead (1 MiB instead of 64 KiB) while we analyse: on two cores the
    decoder and the analysis then overlap instead of taking turns. Linux only; best effort."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if set_size is None:
        return
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, set_size, 1 << 20)


def _ffmpeg_exe() -> str:
    """The ffmpeg binary bundled with imageio-ffmpeg (or named by ``IMAGEIO_FFMPEG_EXE``)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def probe_with_mutagen(path: Path) -> StreamInfo | None:
    """Stream parameters from the MP4 / ADTS headers, without starting a process."""
    import mutagen

    try:
        parsed = mutagen.File(path)
    except (mutagen.MutagenError, OSError, ValueError, IndexError, KeyError):
        return None
    info = getattr(parsed, "info", None)
    sample_rate = int(getattr(info, "sample_rate", 0) or 0)
    channels = int(getattr(info, "channels", 0) or 0)
    length = float(getattr(info, "length", 0.0) or 0.0)
    if sample_rate <= 0 or channels <= 0:
        return None
    frames = round(length * sample_rate)
    return StreamInfo(sample_rate=sample_rate, channels=channels, frames=frames)


_AUDIO_STREAM_RE: Final = re.compile(
    r"Stream #\d+:\d+.*?: Audio: .*?(\d+) Hz, ([a-z]+|\d+(?:\.\d)?(?:\([\w-]+\))?|\d+ channels)"
)
_DURATION_RE: Final = re.compile(r"Duration: (\d+):(\d{2}):(\d{2}(?:\.\d+)?)")
_LAYOUT_CHANNELS: Final = {
    "mono": 1, "stereo": 2, "downmix": 2, "quad": 4, "hexagonal": 6, "octagonal": 8,
}  # fmt: skip


def parse_ffmpeg_info(stderr: str) -> StreamInfo | None:
    """Stream parameters from the banner ``ffmpeg -i FILE`` prints, or None if it has no audio."""
    stream = _AUDIO_STREAM_RE.search(stderr)
    if stream is None:
        return None
    sample_rate = int(stream.group(1))
    layout = stream.group(2)
    if layout[0].isalpha():
        channels = _LAYOUT_CHANNELS.get(layout, 0)
    elif layout.endswith(" channels"):
        channels = int(layout.split()[0])
    else:  # "5.1", "7.1(wide)", ...: main channels plus the LFE
        main, _, rest = layout.partition(".")
        channels = int(main) + int(rest[:1] or 0)
    duration = _DURATION_RE.search(stderr)
    seconds = 0.0
    if duration is not None:
        h, m, s = duration.groups()
        seconds = int(h) * 3600 + int(m) * 60 + float(s)
    if sample_rate <= 0 or channels <= 0:
        return None
    frames = round(seconds * sample_rate)
    return StreamInfo(sample_rate=sample_rate, channels=channels, frames=frames)


def probe_with_ffmpeg(exe: str, path: Path) -> StreamInfo:
    """Fallback probe for files mutagen cannot parse: ffmpeg's view of the first audio stream."""
    try:
        done = subprocess.run(
            [exe, "-nostdin", "-hide_banner", "-i", str(path)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_FFMPEG_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise corrupt(exc) from exc
    stderr = done.stderr.decode("utf-8", "replace")
    info = parse_ffmpeg_info(stderr)
    if info is None:
        lines = [ln for ln in stderr.splitlines() if "output file" not in ln]
        raise corrupt(lines[-1] if lines else "no audio stream found")
    return info
