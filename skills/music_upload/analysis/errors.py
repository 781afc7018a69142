"""Failures the upload pipeline can show to the person who uploaded the file."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Stable machine-readable reasons; stored with the track as ``{code, detail}``."""

    CORRUPT_AUDIO = "CORRUPT_AUDIO"
    UNSUPPORTED_FORMAT = "UNSUPPORTED_FORMAT"
    TOO_LONG = "TOO_LONG"
    EMPTY_AUDIO = "EMPTY_AUDIO"
    TYPE_MISMATCH = "TYPE_MISMATCH"


class AnalysisError(Exception):
    """The file cannot become a playable track; ``detail`` is a sentence meant for a person."""

    def __init__(self, code: ErrorCode | str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = ErrorCode(code)
        self.detail = detail

    def to_dict(self) -> dict[str, str]:
        """The ``{code, detail}`` pair the actor stores as the track's failure reason."""
        return {"code": self.code.value, "detail": self.detail}
