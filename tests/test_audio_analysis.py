"""The music-upload audio analysis library on files generated here (no services needed).

Fixtures are synthesised with numpy, written with soundfile (WAV/FLAC/OGG/MP3) and the ffmpeg
binary from imageio-ffmpeg (M4A/AAC), so every expected value is known exactly.
"""

from __future__ import annotations

import base64
import io
import itertools
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from skills.music_upload.analysis import (
    CONTENT_TYPE_FORMATS,
    AnalysisError,
    AnalysisResult,
    ErrorCode,
    analyse,
    sniff_file,
    sniff_format,
)
from skills.music_upload.analysis.decode import parse_ffmpeg_info
from skills.music_upload.analysis.loudness import LoudnessMeter
from skills.music_upload.analysis.tempo import OnsetEnvelope
from skills.music_upload.analysis.waveform import WaveformBuilder

SR = 44100
HOUR = 3600.0
SOUNDFILE_KINDS = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
}


# --- signal and file helpers ---------------------------------------------------------------


def sine(
    seconds: float, *, amplitude: float = 1.0, freq: float = 1000.0, sr: int = SR
) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def click_track(bpm: float, seconds: float = 25.0, sr: int = SR) -> np.ndarray:
    """Decaying 1 kHz bursts (30 ms) on every beat."""
    n = round(seconds * sr)
    burst_t = np.arange(round(0.03 * sr)) / sr
    burst = 0.8 * np.sin(2 * np.pi * 1000 * burst_t) * np.exp(-burst_t / 0.005)
    x = np.zeros(n, dtype=np.float32)
    for start in np.arange(0.0, seconds, 60.0 / bpm):
        i = round(start * sr)
        if i + len(burst) > n:
            break
        x[i : i + len(burst)] += burst
    return x


def write(path: Path, data: np.ndarray, sr: int = SR) -> Path:
    fmt, subtype = SOUNDFILE_KINDS.get(path.suffix[1:], ("WAV", "FLOAT"))
    sf.write(path, data, sr, format=fmt, subtype=subtype)
    return path


def ffmpeg(*args: str) -> None:
    import imageio_ffmpeg

    exe = imageio_ffmpeg.get_ffmpeg_exe()
    subprocess.run([exe, "-nostdin", "-v", "error", "-y", *args], check=True, timeout=60)


def png_bytes(size: tuple[int, int] = (800, 600)) -> bytes:
    from PIL import Image

    image = Image.new("RGB", size, (200, 40, 90))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def result_of(path: Path, **kwargs: object) -> AnalysisResult:
    return analyse(path, max_duration_s=HOUR, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 3 s stereo 1 kHz tone at -6 dBFS in every supported format."""
    root = tmp_path_factory.mktemp("media")
    tone = sine(3.0, amplitude=0.5)
    stereo = np.stack([tone, tone], axis=1)
    files = {kind: write(root / f"tone.{kind}", stereo) for kind in SOUNDFILE_KINDS}
    files["m4a"] = root / "tone.m4a"
    files["aac"] = root / "tone.aac"
    ffmpeg("-i", str(files["wav"]), "-c:a", "aac", "-b:a", "128k", str(files["m4a"]))
    ffmpeg("-i", str(files["wav"]), "-c:a", "aac", "-b:a", "128k", "-f", "adts", str(files["aac"]))
    return files


# --- sniffing --------------------------------------------------------------------------------

SNIFFED = {"wav": "wav", "flac": "flac", "ogg": "ogg", "mp3": "mp3", "m4a": "mp4", "aac": "aac"}


@pytest.mark.parametrize("kind", sorted(SNIFFED))
def test_sniff_detects_each_format(media: dict[str, Path], kind: str) -> None:
    path = media[kind]
    assert sniff_format(path.read_bytes()[:65536]) == SNIFFED[kind]
    assert sniff_file(path) == SNIFFED[kind]


def test_sniff_rejects_what_is_not_audio(tmp_path: Path) -> None:
    text = tmp_path / "song.mp3"
    text.write_text("Definitely an mp3, trust me.\n" * 100)
    assert sniff_file(text) is None
    assert sniff_format(b"") is None
    assert sniff_format(png_bytes()) is None
    assert sniff_format(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic") is None
    assert sniff_format(b"OggS\x00\x02" + b"\x00" * 20 + b"\x01\x1e\x80theora\x00\x00") is None
    assert sniff_format(b"ID3\x04\x00\x00\x00\x00\x00\x05hello" + b"plain text after a tag") is None
    # An MPEG sync word alone is not enough: the next frame must be where the header says.
    assert sniff_format(b"\xff\xfb\x90\x44" + b"\x00" * 2000) is None


def test_sniff_looks_past_an_id3_tag(media: dict[str, Path]) -> None:
    from mutagen.id3 import APIC, ID3

    tags = ID3()
    tags.add(APIC(encoding=3, mime="image/png", type=3, desc="", data=b"\x89PNG" + b"\0" * 200_000))
    raw = io.BytesIO()
    tags.save(raw)
    tagged = raw.getvalue() + media["aac"].read_bytes()
    assert sniff_format(tagged[:65536]) == "mp3"  # the tag outruns the head: assumed MP3
    path = media["aac"].with_name("tagged.aac")
    path.write_bytes(tagged)
    assert sniff_file(path) == "aac"


def test_content_types_map_to_formats() -> None:
    assert set(CONTENT_TYPE_FORMATS) == {
        "audio/mpeg", "audio/wav", "audio/x-wav", "audio/wave", "audio/flac", "audio/x-flac",
        "audio/ogg", "audio/aac", "audio/mp4", "audio/x-m4a",
    }  # fmt: skip
    assert CONTENT_TYPE_FORMATS["audio/x-m4a"] == {"mp4"}
    assert CONTENT_TYPE_FORMATS["audio/mpeg"] == {"mp3"}


# --- basic properties per format ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["wav", "flac", "ogg", "mp3", "m4a", "aac"])
def test_properties_per_format(media: dict[str, Path], kind: str) -> None:
    result = result_of(media[kind])
    assert result.format == SNIFFED[kind]
    assert result.sample_rate == SR
    assert result.channels == 2
    # PCM and Vorbis are sample-exact, MP3 is gapless thanks to the LAME header; AAC keeps a
    # priming frame or so, depending on the container.
    tolerance = {"wav": 0, "flac": 0, "ogg": 0, "mp3": 0}.get(kind, 50)
    assert abs(result.duration_ms - 3000) <= tolerance
    if kind == "wav":
        assert result.bitrate == SR * 2 * 16
    else:
        assert result.bitrate == pytest.approx(media[kind].stat().st_size * 8 / 3.0, rel=0.03)
    # -6.02 dBFS in both channels: -3.01 LUFS per BS.1770 sine, +3.01 dB for the second channel.
    assert result.loudness_lufs == pytest.approx(-6.02, abs=0.3)
    assert result.bpm is None  # a steady tone has no beat
    assert result.cover is None
    # The pixel width comes from the header's frame count, an estimate for AAC.
    assert abs(result.waveform["length"] - 900) <= (0 if tolerance == 0 else 20)


# --- loudness ------------------------------------------------------------------------------


@pytest.mark.parametrize(("amplitude", "expected"), [(1.0, -3.01), (0.1, -23.01)])
@pytest.mark.parametrize("sr", [44100, 48000])
def test_loudness_of_a_1khz_sine(
    tmp_path: Path, amplitude: float, expected: float, sr: int
) -> None:
    """BS.1770: a 0 dBFS 1 kHz sine in one front channel reads -3.01 LUFS."""
    path = write(tmp_path / "sine.wav", sine(10.0, amplitude=amplitude, sr=sr), sr)
    assert result_of(path).loudness_lufs == pytest.approx(expected, abs=0.3)


def test_loudness_weights_and_gates(tmp_path: Path) -> None:
    tone = sine(10.0, amplitude=0.1)
    stereo = write(tmp_path / "stereo.wav", np.stack([tone, tone], axis=1))
    assert result_of(stereo).loudness_lufs == pytest.approx(-20.0, abs=0.3)  # two channels: +3 dB
    gated = np.concatenate([tone, np.zeros(10 * SR, np.float32), tone * 0.001])
    # Silence falls under the absolute gate and the -60 dB tail under the relative gate.
    assert result_of(write(tmp_path / "gated.wav", gated)).loudness_lufs == pytest.approx(
        -23.01, abs=0.3
    )
    silence = write(tmp_path / "silence.wav", np.zeros(5 * SR, np.float32))
    assert result_of(silence).loudness_lufs is None


def test_surround_channels_weigh_more_and_lfe_not_at_all(tmp_path: Path) -> None:
    """5.1 (L R C LFE Ls Rs): a sine in Ls counts 1.41x (+1.49 dB); in the LFE it is ignored."""
    tone = sine(5.0, amplitude=0.1)
    surround = np.zeros((len(tone), 6), np.float32)
    surround[:, 4] = tone
    surround[:, 3] = tone
    path = write(tmp_path / "surround.wav", surround)
    assert result_of(path).loudness_lufs == pytest.approx(-23.01 + 1.49, abs=0.3)


def test_streaming_state_does_not_depend_on_block_size() -> None:
    """Blocks of any size give the same numbers as one big block: state carries over exactly."""
    rng = np.random.default_rng(7)
    signal = (0.3 * rng.standard_normal((8 * SR, 2))).astype(np.float32) * sine(8.0)[:, None]
    whole_meter, whole_wave, whole_onset = (
        LoudnessMeter(SR, 2),
        WaveformBuilder(SR, 8 * SR),
        OnsetEnvelope(SR),
    )
    whole_meter.add(signal)
    whole_wave.add(signal.mean(axis=1))
    whole_onset.add(signal.mean(axis=1))
    meter, wave, onset = LoudnessMeter(SR, 2), WaveformBuilder(SR, 8 * SR), OnsetEnvelope(SR)
    start = 0
    while start < len(signal):
        size = int(rng.integers(1, 20000))
        block = signal[start : start + size]
        meter.add(block)
        wave.add(block.mean(axis=1))
        onset.add(block.mean(axis=1))
        start += size
    assert meter.integrated() == pytest.approx(whole_meter.integrated(), abs=1e-6)
    assert wave.result() == whole_wave.result()
    np.testing.assert_allclose(onset.envelope(), whole_onset.envelope(), rtol=1e-4, atol=1e-5)


# --- waveform ------------------------------------------------------------------------------


def test_waveform_of_a_full_scale_sine(tmp_path: Path) -> None:
    path = write(tmp_path / "sine.wav", sine(7.3))
    waveform = result_of(path).waveform
    frames = round(7.3 * SR)
    assert waveform | {"data": None} == {
        "version": 2,
        "channels": 1,
        "sample_rate": SR,
        "samples_per_pixel": -(-frames // 900),
        "bits": 8,
        "length": waveform["length"],
        "data": None,
    }
    assert 895 <= waveform["length"] <= 900
    data = waveform["data"]
    assert len(data) == 2 * waveform["length"]
    assert all(-128 <= v <= 127 for v in data)
    assert max(data) == 127 and min(data) <= -127
    assert all(lo <= hi for lo, hi in zip(data[::2], data[1::2], strict=True))


def test_waveform_stays_bounded_when_the_header_understates_the_length() -> None:
    builder = WaveformBuilder(SR, expected_frames=1000, pixels=900)
    signal = np.linspace(-1.0, 1.0, 50_000, dtype=np.float32)
    for start in range(0, len(signal), 4096):
        builder.add(signal[start : start + 4096])
    waveform = builder.result()
    assert 900 <= waveform["length"] <= 1800
    assert waveform["samples_per_pixel"] * waveform["length"] >= 50_000
    assert waveform["data"][0] == -128 and waveform["data"][-1] == 127


# --- tempo ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bpm", [90.0, 120.0, 174.0])
def test_bpm_of_click_tracks(tmp_path: Path, bpm: float) -> None:
    path = write(tmp_path / "clicks.flac", click_track(bpm))
    measured = result_of(path).bpm
    assert measured is not None
    assert abs(measured - bpm) <= 2.0, f"{bpm} BPM measured as {measured}"


# --- cover art -----------------------------------------------------------------------------


def _tag_cover(path: Path, kind: str, picture: bytes) -> None:
    if kind == "mp3":
        from mutagen.id3 import APIC, ID3

        tags = ID3()
        tags.add(APIC(encoding=3, mime="image/png", type=3, desc="cover", data=picture))
        tags.save(path)
    elif kind == "flac":
        from mutagen.flac import FLAC, Picture

        flac = FLAC(path)
        block = Picture()
        block.type, block.mime, block.data = 3, "image/png", picture
        flac.add_picture(block)
        flac.save()
    elif kind == "ogg":
        from mutagen.flac import Picture
        from mutagen.oggvorbis import OggVorbis

        ogg = OggVorbis(path)
        block = Picture()
        block.type, block.mime, block.data = 3, "image/png", picture
        ogg["metadata_block_picture"] = [base64.b64encode(block.write()).decode("ascii")]
        ogg.save()
    else:
        from mutagen.mp4 import MP4, MP4Cover

        mp4 = MP4(path)
        mp4["covr"] = [MP4Cover(picture, imageformat=MP4Cover.FORMAT_PNG)]
        mp4.save()


@pytest.mark.parametrize("kind", ["mp3", "flac", "ogg", "m4a"])
def test_embedded_cover_becomes_a_jpeg_thumbnail(
    media: dict[str, Path], tmp_path: Path, kind: str
) -> None:
    from PIL import Image

    path = tmp_path / media[kind].name
    path.write_bytes(media[kind].read_bytes())
    _tag_cover(path, kind, png_bytes((1200, 800)))
    result = result_of(path)
    assert result.cover is not None
    with Image.open(io.BytesIO(result.cover)) as thumb:
        assert thumb.format == "JPEG"
        assert thumb.size == (500, 333)
    assert result.duration_ms == pytest.approx(3000, abs=50)


def test_broken_cover_art_does_not_fail_the_track(media: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "broken-cover.mp3"
    path.write_bytes(media["mp3"].read_bytes())
    _tag_cover(path, "mp3", b"\x89PNG\r\n\x1a\nnot really")
    result = result_of(path)
    assert result.cover is None
    assert result.duration_ms == 3000


# --- failures ------------------------------------------------------------------------------


def _error(path: Path, **kwargs: object) -> AnalysisError:
    with pytest.raises(AnalysisError) as caught:
        analyse(path, **{"max_duration_s": HOUR, **kwargs})  # type: ignore[arg-type]
    assert caught.value.detail[0].isupper() and caught.value.detail.endswith(".")
    return caught.value


def test_truncated_mp3_decodes_what_is_there_or_fails_cleanly(tmp_path: Path) -> None:
    source = write(tmp_path / "long.mp3", sine(8.0, amplitude=0.5))
    data = source.read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(data[: len(data) // 2])
    try:
        result = result_of(cut)
    except AnalysisError as exc:
        assert exc.code is ErrorCode.CORRUPT_AUDIO
    else:
        assert 2000 <= result.duration_ms <= 6000


def test_garbage_behind_valid_headers_is_corrupt_audio(
    media: dict[str, Path], tmp_path: Path
) -> None:
    wav = tmp_path / "broken.wav"
    wav.write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunkjunkjunkjunk" + bytes(range(256)) * 4)
    assert _error(wav).code is ErrorCode.CORRUPT_AUDIO
    m4a = tmp_path / "broken.m4a"
    m4a.write_bytes(media["m4a"].read_bytes()[:600])  # ftyp survives, the audio does not
    err = _error(m4a)
    assert err.code is ErrorCode.CORRUPT_AUDIO
    assert err.detail.startswith("The file could not be decoded: ")


def test_not_audio_is_unsupported(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp3"
    text.write_text("not audio at all\n")
    assert _error(text).code is ErrorCode.UNSUPPORTED_FORMAT


def test_empty_files_and_zero_frames(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    assert _error(empty).code is ErrorCode.EMPTY_AUDIO
    no_frames = write(tmp_path / "no-frames.wav", np.zeros((0, 2), np.float32))
    assert _error(no_frames).code is ErrorCode.EMPTY_AUDIO


def test_unusable_layouts_are_unsupported(tmp_path: Path) -> None:
    low_rate = write(tmp_path / "low.wav", sine(2.0, freq=100.0, sr=2000), 2000)
    assert _error(low_rate).code is ErrorCode.UNSUPPORTED_FORMAT
    many = write(tmp_path / "many.wav", np.zeros((SR, 10), np.float32))
    err = _error(many)
    assert err.code is ErrorCode.UNSUPPORTED_FORMAT
    assert "10 audio channels" in err.detail


@pytest.mark.parametrize("kind", ["wav", "m4a"])
def test_too_long(media: dict[str, Path], kind: str) -> None:
    err = _error(media[kind], max_duration_s=2.0)
    assert err.code is ErrorCode.TOO_LONG
    assert "0:02" in err.detail


def test_decoding_past_an_understated_header_is_caught(
    media: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A header may claim 1 s for 3 s of audio: the limit holds on decoded frames, the waveform
    merges pixels instead of growing without bound."""
    from skills.music_upload.analysis import decode

    monkeypatch.setattr(decode, "probe_with_mutagen", lambda _: decode.StreamInfo(SR, 2, SR))
    err = _error(media["m4a"], max_duration_s=2.0)
    assert err.code is ErrorCode.TOO_LONG
    assert "longer" in err.detail
    waveform = result_of(media["m4a"]).waveform
    assert 900 <= waveform["length"] <= 1800
    assert waveform["samples_per_pixel"] * waveform["length"] >= 3 * SR


def test_a_lying_mp3_header_is_not_taken_for_too_long(
    media: dict[str, Path], tmp_path: Path
) -> None:
    """A corrupt Xing frame count claims days of audio in a 3 s file: decode what is there."""
    data = bytearray(media["mp3"].read_bytes())
    tag = max(data.find(b"Info", 0, 400), data.find(b"Xing", 0, 400))
    assert tag > 0
    data[tag + 8 : tag + 12] = (0x00FFFFFF).to_bytes(4, "big")
    path = tmp_path / "lying.mp3"
    path.write_bytes(bytes(data))
    assert sf.info(path).frames > 24 * 3600 * SR
    result = result_of(path)
    assert result.duration_ms == pytest.approx(3000, abs=50)
    assert result.waveform["length"] > 0


def test_ffmpeg_probe_fallback(media: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from skills.music_upload.analysis import decode

    monkeypatch.setattr(decode, "probe_with_mutagen", lambda _: None)
    result = result_of(media["aac"])
    assert (result.sample_rate, result.channels) == (SR, 2)
    assert result.duration_ms == pytest.approx(3000, abs=50)


def test_declared_type_must_match_the_bytes(media: dict[str, Path]) -> None:
    assert _error(media["flac"], declared_type="audio/mpeg").code is ErrorCode.TYPE_MISMATCH
    assert _error(media["wav"], declared_type="image/png").code is ErrorCode.UNSUPPORTED_FORMAT
    assert result_of(media["ogg"], declared_type="audio/ogg; codecs=vorbis").format == "ogg"
    assert result_of(media["m4a"], declared_type="audio/x-m4a").format == "mp4"
    assert result_of(media["wav"], declared_type="audio/x-wav").format == "wav"
    assert AnalysisError(ErrorCode.TOO_LONG, "x").to_dict() == {"code": "TOO_LONG", "detail": "x"}


# --- imports ------------------------------------------------------------------------------------


def test_importing_the_package_loads_no_numerics() -> None:
    """The API process sniffs uploads with this package; numpy/scipy load only in analyse()."""
    code = (
        "import sys, skills.music_upload.analysis as a\n"
        "heavy = {'numpy', 'scipy', 'soundfile', 'PIL', 'mutagen'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


# --- progress, probing, memory ---------------------------------------------------------------


def test_progress_is_reported_every_few_percent(tmp_path: Path) -> None:
    path = write(tmp_path / "minute.flac", sine(60.0, amplitude=0.2))
    seen: list[float] = []
    result_of(path, progress=seen.append)
    assert seen[0] == 0.0 and seen[-1] == 1.0
    assert seen == sorted(seen)
    assert 20 <= len(seen) <= 60
    assert max(b - a for a, b in itertools.pairwise(seen)) <= 0.1


def test_ffmpeg_banner_parsing() -> None:
    banner = (
        "Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'x.m4a':\n"
        "  Duration: 00:03:05.50, start: 0.000000, bitrate: 130 kb/s\n"
        "  Stream #0:0[0x1](und): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, 5.1, fltp\n"
    )
    info = parse_ffmpeg_info(banner)
    assert info is not None
    assert (info.sample_rate, info.channels, info.frames) == (48000, 6, 185.5 * 48000)
    stereo = parse_ffmpeg_info("Stream #0:0: Audio: mp3, 44100 Hz, stereo, fltp, 128 kb/s")
    assert stereo is not None and stereo.channels == 2
    assert parse_ffmpeg_info("Stream #0:0: Video: h264") is None


def test_memory_stays_bounded_for_a_ten_minute_file(tmp_path: Path) -> None:
    """10 minutes of mono 44.1 kHz is 106 MB as float32 PCM; block processing needs a fraction."""
    path = tmp_path / "ten-minutes.wav"
    with sf.SoundFile(path, "w", SR, 1, format="WAV", subtype="PCM_16") as out:
        minute = click_track(120.0, seconds=60.0) + sine(60.0, amplitude=0.1, freq=220.0)
        for _ in range(10):
            out.write(minute)
    del minute
    tracemalloc.start()
    try:
        result = result_of(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.duration_ms == 600_000
    assert result.bpm == pytest.approx(120.0, abs=2.0)
    assert peak < 30 * 1024 * 1024, f"peak traced memory {peak / 2**20:.1f} MiB"
