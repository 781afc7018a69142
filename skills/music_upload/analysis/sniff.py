"""Recognise the audio container from its first bytes: the file name and declared type are hints
from the client, so they are only checked against what the bytes say, never trusted.

Pure Python with no heavy imports, so the API process can sniff at finalize time cheaply.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final

from skills.music_upload.analysis.errors import AnalysisError, ErrorCode

HEAD_BYTES: Final = 64 * 1024
"""How much of the file start :func:`sniff_format` wants: enough to see two MPEG/ADTS frames."""

FORMATS: Final = ("mp3", "wav", "flac", "ogg", "aac", "mp4")

CONTENT_TYPE_FORMATS: Final[Mapping[str, frozenset[str]]] = {
    "audio/mpeg": frozenset({"mp3"}),
    "audio/wav": frozenset({"wav"}),
    "audio/x-wav": frozenset({"wav"}),
    "audio/wave": frozenset({"wav"}),
    "audio/flac": frozenset({"flac"}),
    "audio/x-flac": frozenset({"flac"}),
    "audio/ogg": frozenset({"ogg"}),
    # Some clients label .m4a files audio/aac: the codec is AAC either way, so both containers pass.
    "audio/aac": frozenset({"aac", "mp4"}),
    "audio/mp4": frozenset({"mp4"}),
    "audio/x-m4a": frozenset({"mp4"}),
}
"""Allowed upload content types and the sniffed formats each may hold."""

# (version bits, layer bits) -> kbit/s by bitrate index 1..14; MPEG-2 and 2.5 share a table.
_MPEG_BITRATES: Final[dict[tuple[int, int], tuple[int, ...]]] = {
    (3, 3): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (3, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (3, 1): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (2, 3): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (2, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (2, 1): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MPEG_SAMPLE_RATES: Final = {
    3: (44100, 48000, 32000),  # MPEG-1
    2: (22050, 24000, 16000),  # MPEG-2
    0: (11025, 12000, 8000),  # MPEG-2.5
}
_OGG_AUDIO_CODECS: Final = (b"\x01vorbis", b"OpusHead")  # what libsndfile decodes from Ogg
_NON_AUDIO_BRANDS: Final = frozenset(
    {b"heic", b"heix", b"hevc", b"heim", b"heis", b"hevm", b"mif1", b"msf1", b"avif", b"avis"}
)  # ISO-BMFF images share the ftyp box with MP4 audio


def normalise_content_type(content_type: str) -> str:
    """``"Audio/MPEG; charset=x"`` -> ``"audio/mpeg"``."""
    return content_type.split(";", 1)[0].strip().lower()


def formats_for_content_type(content_type: str) -> frozenset[str] | None:
    """The formats a declared type may hold, or None if the type is not allowed at all."""
    return CONTENT_TYPE_FORMATS.get(normalise_content_type(content_type))


def check_declared_type(declared_type: str, sniffed: str) -> None:
    """Raise ``UNSUPPORTED_FORMAT`` / ``TYPE_MISMATCH`` unless the declared type fits the bytes."""
    allowed = formats_for_content_type(declared_type)
    if allowed is None:
        raise AnalysisError(
            ErrorCode.UNSUPPORTED_FORMAT,
            f"The content type {declared_type!r} is not accepted; upload MP3, WAV, FLAC, OGG, "
            "AAC or M4A audio.",
        )
    if sniffed not in allowed:
        raise AnalysisError(
            ErrorCode.TYPE_MISMATCH,
            f"The file was declared as {normalise_content_type(declared_type)} but its content "
            f"is {sniffed.upper()} audio.",
        )


def sniff_format(head: bytes) -> str | None:
    """The container format from the file's first bytes (ideally :data:`HEAD_BYTES`), or None.

    An ID3v2 tag larger than ``head`` is assumed to front an MP3 (by far the common case); use
    :func:`sniff_file` to look past it.
    """
    if head[:3] == b"ID3":
        offset = _id3_end(head)
        if offset is None:
            return None
        if offset + 4 > len(head):
            return "mp3"
        return _sniff_after_id3(head[offset:])
    return _sniff_raw(head)


def sniff_file(path: Path) -> str | None:
    """:func:`sniff_format` on a file, seeking past ID3v2 tags (cover art can make them huge)."""
    offset = 0
    with path.open("rb") as f:
        for _ in range(8):  # a few stacked tags at most; more is not a music file
            f.seek(offset)
            chunk = f.read(HEAD_BYTES)
            if chunk[:3] != b"ID3":
                return _sniff_raw(chunk) if offset == 0 else _sniff_after_id3(chunk)
            end = _id3_end(chunk)
            if end is None:
                return None
            offset += end
    return None


def _sniff_raw(head: bytes) -> str | None:
    """Sniff a stream that does not start with an ID3 tag."""
    if head[:4] in (b"RIFF", b"RIFX", b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg" if _ogg_is_audio(head) else None
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return None if head[8:12] in _NON_AUDIO_BRANDS else "mp4"
    if _mpeg_frames_ok(head):
        return "mp3"
    if _adts_frames_ok(head):
        return "aac"
    return None


def _sniff_after_id3(payload: bytes) -> str | None:
    """What an ID3v2 tag may front: MP3, ADTS AAC or (rarely) FLAC; some taggers pad with zeros."""
    inner = _sniff_raw(payload.lstrip(b"\x00"))
    return inner if inner in ("mp3", "aac", "flac") else None


def _id3_end(head: bytes) -> int | None:
    """Offset just past the ID3v2 tag(s) at the start of ``head``, or None if malformed."""
    offset = 0
    while head[offset : offset + 3] == b"ID3":
        header = head[offset : offset + 10]
        if len(header) < 10:
            return None
        if header[3] not in (2, 3, 4) or any(b & 0x80 for b in header[6:10]):
            return None
        size = (header[6] << 21) | (header[7] << 14) | (header[8] << 7) | header[9]
        footer = 10 if header[3] == 4 and header[5] & 0x10 else 0
        offset += 10 + size + footer
    return offset


def _mpeg_frame(h: bytes) -> tuple[int, int, int] | None:
    """``(frame length, version bits, sample rate)`` of a valid MPEG audio header, or None."""
    if len(h) < 4 or h[0] != 0xFF or (h[1] & 0xE0) != 0xE0:
        return None
    version, layer = (h[1] >> 3) & 3, (h[1] >> 1) & 3
    bitrate_index, rate_index, padding = h[2] >> 4, (h[2] >> 2) & 3, (h[2] >> 1) & 1
    if version == 1 or layer == 0 or bitrate_index in (0, 15) or rate_index == 3 or h[3] & 3 == 2:
        return None
    bitrate = _MPEG_BITRATES[(3 if version == 3 else 2, layer)][bitrate_index - 1] * 1000
    sample_rate = _MPEG_SAMPLE_RATES[version][rate_index]
    if layer == 3:  # Layer I: 4-byte slots
        length = (12 * bitrate // sample_rate + padding) * 4
    elif layer == 1 and version != 3:  # Layer III, MPEG-2/2.5: half the samples per frame
        length = 72 * bitrate // sample_rate + padding
    else:
        length = 144 * bitrate // sample_rate + padding
    return length, version, sample_rate


def _mpeg_frames_ok(head: bytes) -> bool:
    """A valid frame header at 0 and, if ``head`` reaches it, a matching one right after it."""
    first = _mpeg_frame(head)
    if first is None:
        return False
    length = first[0]
    if len(head) < length + 4:
        return True
    second = _mpeg_frame(head[length : length + 4])
    return second is not None and second[1:] == first[1:]


def _adts_frame_length(h: bytes) -> int | None:
    """Length of the ADTS AAC frame whose header starts ``h``, or None if it is not one."""
    if len(h) < 7 or h[0] != 0xFF or (h[1] & 0xF6) != 0xF0:
        return None
    if (h[2] >> 2) & 0x0F > 12:  # sampling-frequency index
        return None
    length = ((h[3] & 0x03) << 11) | (h[4] << 3) | (h[5] >> 5)
    return length if length >= (7 if h[1] & 1 else 9) else None


def _adts_frames_ok(head: bytes) -> bool:
    """Like :func:`_mpeg_frames_ok` for ADTS: the next frame must sync too when visible."""
    length = _adts_frame_length(head)
    if length is None:
        return False
    if len(head) < length + 7:
        return True
    return _adts_frame_length(head[length : length + 7]) is not None


def _ogg_is_audio(head: bytes) -> bool:
    """True when the first Ogg packet is a codec libsndfile can decode (Vorbis, Opus)."""
    if len(head) < 27:
        return True
    start = 27 + head[26]
    packet = head[start : start + 8]
    return len(packet) < 8 or packet.startswith(_OGG_AUDIO_CODECS)
