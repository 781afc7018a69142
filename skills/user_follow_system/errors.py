"""Problems this skill raises, with the ``code`` values clients switch on."""

from __future__ import annotations

from core.errors import ValidationFailed


class CannotFollowSelf(ValidationFailed):
    """A user tried to follow (or unfollow) their own profile: 422."""

    code, title = "CANNOT_FOLLOW_SELF", "Cannot follow yourself"
