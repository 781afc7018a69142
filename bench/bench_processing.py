"""Audio-processing benchmark for the music-upload analysis library (not part of the tests).

    python bench/bench_processing.py [--runs 10] [--long-minutes 60] [--long-format flac]

Prints single-process throughput (tracks per minute) for a 3-minute 44.1 kHz stereo MP3 (and the
same track as M4A, which decodes through ffmpeg), then peak memory while analysing a 60-minute
file written block by block. Every step runs in its own child process and this parent never
imports numpy: on Linux ru_maxrss carries over fork and exec, so a fat parent would inflate it.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

SR = 44100
BLOCK_S = 10
FORMATS = {"mp3": ("MP3", "MPEG_LAYER_III"), "flac": ("FLAC", "PCM_16"), "wav": ("WAV", "PCM_16")}


def _ensure_importable() -> None:
    """Let ``python bench/bench_processing.py`` find the repository's packages."""
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)


def _rss_mib() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MiB."""
    status = Path("/proc/self/status")
    current = 0.0
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) / 1024
    return current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (ffmpeg), in seconds."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# --- children ----------------------------------------------------------------------------------


def music_blocks(seconds: int, *, bpm: float = 126.0, seed: int = 1) -> Iterator[np.ndarray]:
    """Stereo blocks of something music-like: kick on the beat, noise hats, a chord pad."""
    import numpy as np

    rng = np.random.default_rng(seed)
    beat = round(SR * 60.0 / bpm)
    kick_t = np.arange(round(0.15 * SR)) / SR
    kick = np.sin(2 * np.pi * (50 + 90 * np.exp(-kick_t / 0.02)) * kick_t) * np.exp(-kick_t / 0.07)
    for start in range(0, seconds * SR, BLOCK_S * SR):
        n = min(BLOCK_S * SR, seconds * SR - start)
        index = start + np.arange(n)
        t = index / SR
        mono = sum(0.08 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6))
        mono = mono + 0.03 * rng.standard_normal(n) * ((index % (beat // 2)) < 800)
        for pos in range(-start % beat, n, beat):
            seg = kick[: n - pos]
            mono[pos : pos + len(seg)] += 0.6 * seg
        yield np.stack([mono, 0.9 * mono], axis=1).astype(np.float32)


def child_generate(path: Path, seconds: int, fmt: str) -> dict[str, Any]:
    """Write ``seconds`` of audio incrementally (memory bounded by one block); M4A via ffmpeg."""
    import soundfile as sf

    source = path.with_suffix(".wav") if fmt == "m4a" else path
    container, subtype = FORMATS["wav" if fmt == "m4a" else fmt]
    with sf.SoundFile(source, "w", SR, 2, format=container, subtype=subtype) as out:
        for block in music_blocks(seconds):
            out.write(block)
    if fmt == "m4a":
        import imageio_ffmpeg

        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-i", str(source)]
        subprocess.run([*cmd, "-c:a", "aac", "-b:a", "192k", str(path)], check=True)
        source.unlink()
    return {"size_mib": path.stat().st_size / 2**20}


def child_analyse(path: Path, runs: int) -> dict[str, Any]:
    """Analyse ``path`` ``runs`` times after a warm-up; time and memory of the lot."""
    _ensure_importable()
    import mutagen  # noqa: F401  (everything analyse() imports lazily, for the baseline)
    import PIL.Image  # noqa: F401

    import skills.music_upload.analysis.decode
    import skills.music_upload.analysis.loudness
    import skills.music_upload.analysis.tempo  # noqa: F401
    from skills.music_upload.analysis import analyse

    baseline_rss, _ = _rss_mib()
    if runs > 1:
        analyse(path, max_duration_s=7200)  # warm-up: page cache, first-call costs
    times = []
    cpu_before = _cpu_seconds()
    tracemalloc.start()
    for _ in range(runs):
        started = time.perf_counter()
        result = analyse(path, max_duration_s=7200)
        times.append(time.perf_counter() - started)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    cpu = (_cpu_seconds() - cpu_before) / runs
    _, maxrss = _rss_mib()
    return {
        "seconds": statistics.median(times),
        "cpu_seconds": cpu,
        "traced_mib": traced_peak / 2**20,
        "maxrss_mib": maxrss,
        "baseline_rss_mib": baseline_rss,
        "duration_min": result.duration_ms / 60000,
        "bpm": result.bpm,
        "lufs": result.loudness_lufs,
        "pixels": result.waveform["length"],
    }


# --- parent ------------------------------------------------------------------------------------


def _child(*args: object) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *map(str, args)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="analyses of each 3-minute track")
    parser.add_argument("--long-minutes", type=int, default=60)
    parser.add_argument("--long-format", choices=sorted(FORMATS), default="flac")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, path, *rest = args.child
        if kind == "generate":
            print(json.dumps(child_generate(Path(path), int(rest[0]), rest[1])))
        else:
            print(json.dumps(child_analyse(Path(path), int(rest[0]))))
        return

    rows: list[tuple[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="soundhive-bench-") as tmp:
        root = Path(tmp)
        for fmt in ("mp3", "m4a"):
            path = root / f"three-minutes.{fmt}"
            started = time.perf_counter()
            _child("generate", path, 180, fmt)
            print(f"generated 3-minute {fmt.upper()} in {time.perf_counter() - started:.1f} s")
            rows.append((f"3-min {fmt.upper()}", _child("analyse", path, args.runs)))
        long_path = root / f"long.{args.long_format}"
        started = time.perf_counter()
        size = _child("generate", long_path, args.long_minutes * 60, args.long_format)["size_mib"]
        print(
            f"generated {args.long_minutes}-minute {args.long_format.upper()} ({size:.0f} MiB) "
            f"in {time.perf_counter() - started:.1f} s"
        )
        long_label = f"{args.long_minutes}-min {args.long_format.upper()}"
        rows.append((long_label, _child("analyse", long_path, 1)))

    print()
    header = ("case", "wall s", "tracks/min", "CPU s", "traced peak", "ru_maxrss", "RSS at start")
    print("{:<14}{:>8}{:>12}{:>8}{:>13}{:>11}{:>14}".format(*header))
    for name, row in rows:
        print(
            f"{name:<14}{row['seconds']:>8.3f}{60.0 / row['seconds']:>12.1f}"
            f"{row['cpu_seconds']:>8.3f}{row['traced_mib']:>9.1f} MiB"
            f"{row['maxrss_mib']:>7.0f} MiB{row['baseline_rss_mib']:>10.0f} MiB"
        )
    long = rows[-1][1]
    pcm_mib = long["duration_min"] * 60 * SR * 2 * 4 / 2**20
    print(
        f"\n{long_label}: {long['duration_min']:.1f} min decoded, BPM {long['bpm']}, "
        f"{long['lufs']} LUFS, "
        f"{long['pixels']} waveform pixels; its whole PCM as float32 would be {pcm_mib:.0f} MiB."
        "\nwall s / CPU s = per track (median wall time; CPU of analysis + ffmpeg, mean)."
        "\nRSS at start = the analysing process after importing numpy/scipy/soundfile/Pillow."
    )


if __name__ == "__main__":
    main()
