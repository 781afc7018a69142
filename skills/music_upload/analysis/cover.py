"""Embedded cover art -> a small JPEG thumbnail.

A broken or absent picture never fails the upload: the track simply gets no cover.
"""

from __future__ import annotations

import base64
import io
import logging
from pathlib import Path
from typing import Any, Final

log = logging.getLogger(__name__)

THUMBNAIL_SIZE: Final = 500
MAX_PICTURE_BYTES: Final = 20 * 1024 * 1024
MAX_PICTURE_PIXELS: Final = 4096 * 4096
"""Larger images are refused before decoding: a decompression bomb must not exhaust a worker."""
FRONT_COVER: Final = 3  # ID3 / FLAC picture type "Cover (front)"


def extract_cover(path: Path, *, size: int = THUMBNAIL_SIZE) -> bytes | None:
    """JPEG thumbnail (at most ``size`` x ``size``) of the file's embedded front cover, or None."""
    try:
        picture = embedded_picture(path)
    except Exception:  # mutagen raises many types on odd tags; the cover is optional anyway
        log.warning("could not read embedded cover art", exc_info=True)
        return None
    if picture is None:
        return None
    return make_thumbnail(picture, size=size)


def embedded_picture(path: Path) -> bytes | None:
    """The raw bytes of the best embedded picture: the front cover if marked, else the first."""
    import mutagen

    parsed = mutagen.File(path)
    if parsed is None:
        return None
    candidates: list[tuple[int, bytes]] = []
    for picture in getattr(parsed, "pictures", None) or []:  # FLAC
        candidates.append((picture.type, picture.data))
    tags: Any = parsed.tags
    if tags is not None:
        if hasattr(tags, "getall"):  # ID3: MP3, and WAV/AAC files carrying an ID3 chunk
            candidates += [(frame.type, frame.data) for frame in tags.getall("APIC")]
        elif hasattr(tags, "get"):
            candidates += [(FRONT_COVER, bytes(c)) for c in tags.get("covr") or []]  # MP4
            candidates += _vorbis_pictures(tags)
    candidates = [(kind, data) for kind, data in candidates if 0 < len(data) <= MAX_PICTURE_BYTES]
    if not candidates:
        return None
    fronts = [data for kind, data in candidates if kind == FRONT_COVER]
    return fronts[0] if fronts else candidates[0][1]


def _vorbis_pictures(tags: Any) -> list[tuple[int, bytes]]:
    """Ogg Vorbis/Opus comments carry FLAC picture blocks in base64 (METADATA_BLOCK_PICTURE)."""
    from mutagen.flac import Picture

    found: list[tuple[int, bytes]] = []
    for value in tags.get("metadata_block_picture") or []:
        try:
            picture = Picture(base64.b64decode(value))
        except Exception:  # binascii.Error, struct.error, MutagenError...: skip the block
            continue
        found.append((picture.type, picture.data))
    return found


def make_thumbnail(data: bytes, *, size: int = THUMBNAIL_SIZE) -> bytes | None:
    """Downscale an image to fit ``size`` x ``size`` and encode it as JPEG; None if unreadable."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_PICTURE_PIXELS:
                log.warning("embedded cover art too large: %sx%s", image.width, image.height)
                return None
            image.draft("RGB", (size, size))  # JPEG: decode straight at a reduced scale
            thumb = image.convert("RGBA") if _has_alpha(image) else image.convert("RGB")
        thumb.thumbnail((size, size), Image.Resampling.LANCZOS)
        if thumb.mode == "RGBA":  # JPEG has no alpha: flatten onto white
            background = Image.new("RGB", thumb.size, (255, 255, 255))
            background.paste(thumb, mask=thumb.getchannel("A"))
            thumb = background
        out = io.BytesIO()
        thumb.save(out, "JPEG", quality=85, optimize=True)
    except Exception:  # Pillow raises OSError, ValueError, DecompressionBombError, SyntaxError...
        log.warning("could not make a thumbnail from embedded cover art", exc_info=True)
        return None
    return out.getvalue()


def _has_alpha(image: Any) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
