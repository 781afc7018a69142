"""Problems this skill raises, with the ``code`` values clients switch on."""

from __future__ import annotations

from core.errors import Forbidden, NotFound


class UserNotFound(NotFound):
    """No such profile, or one the caller may not see (deleted, banned): always 404."""

    code, title = "USER_NOT_FOUND", "User not found"


class AccountDeleted(Forbidden):
    """The caller's own account was deleted; it may not be used any more."""

    code, title = "ACCOUNT_DELETED", "Account deleted"
