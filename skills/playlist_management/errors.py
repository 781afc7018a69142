"""The problems this skill answers with (codes documented in README.md)."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from core.errors import Forbidden, NotFound, ValidationFailed

TRACK_FK = "fk_playlist_tracks_track_id"
SOURCE_FK = "fk_playlists_forked_from_id"


class PlaylistNotFound(NotFound):
    code, title = "PLAYLIST_NOT_FOUND", "Playlist not found"


class NotPlaylistOwner(Forbidden):
    code, title = "NOT_PLAYLIST_OWNER", "Not the playlist's owner"


class PlaylistFull(ValidationFailed):
    code, title = "PLAYLIST_FULL", "Playlist full"


class TrackNotInPlaylist(NotFound):
    code, title = "TRACK_NOT_IN_PLAYLIST", "Track not in playlist"


def bad_position(position: int, highest: int) -> ValidationFailed:
    """422 in the shape of a request-validation error, pointing at ``position``."""
    msg = f"position must be between 0 and {highest}"
    return ValidationFailed(
        f"position {position} is out of range: {msg}.",
        errors=[{"loc": ["body", "position"], "msg": msg}],
    )


def violated(exc: IntegrityError) -> str | None:
    """The name of the constraint an IntegrityError broke (None if unknown)."""
    diag = getattr(exc.orig, "diag", None)
    return getattr(diag, "constraint_name", None)
