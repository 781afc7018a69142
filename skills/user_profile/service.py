"""Business rules for profiles: provisioning, self-service edits, visibility and the cache.

Each public function runs one transaction on the session it is given and invalidates the
cache only after that transaction commits, so a concurrent reader cannot re-cache the old row.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.auth import Principal
from core.errors import AccountBanned, Conflict, Forbidden
from core.events import emit, relay_after_commit
from skills.user_profile import repository as repo
from skills.user_profile.errors import AccountDeleted, UserNotFound
from skills.user_profile.models import UserProfile, utcnow
from skills.user_profile.schemas import HANDLE_MAX, ProfileRead, handle_problem

if TYPE_CHECKING:
    from core.kernel import Kernel

NAMESPACE = "user-profile"
CACHE_TTL_SECONDS = 600
SUB_MAX = 255
EMAIL_MAX = 320
DIRTY = "user_profile.dirty"
"""``session.info`` key: ids whose cache entries must go once the caller's transaction commits."""

R = TypeVar("R")


ACCOUNT_TTL_SECONDS = 300
"""The caller's own row (ban and delete state included) is cached this long at most."""
TOMBSTONE_SECONDS = 10
"""After a change commits, ``acct:<id>`` holds a tombstone this long instead of being deleted,
and readers cache a row only where nothing is (``SET NX``): a reader that loaded the row just
before a ban committed cannot put the unbanned row back."""
TOMBSTONE: dict[str, Any] = {"changed": True}
SUB_IDS_MAX = 50_000


def id_key(user_id: uuid.UUID) -> str:
    return f"id:{user_id}"


def account_key(user_id: uuid.UUID) -> str:
    return f"acct:{user_id}"


def sub_key(sub: str) -> str:
    return f"sub:{sub}"


SUB_TTL_SECONDS = 86_400
"""``sub → id`` never changes (accounts are soft-deleted), so the shared mapping lives long."""


def handle_key(handle: str) -> str:
    return f"handle:{handle}"


async def _in_transaction(session: AsyncSession, work: Callable[[], Awaitable[R]]) -> R:
    """Run ``work`` in its own transaction so no autobegun one leaks to the next service."""
    async with session.begin():
        return await work()


# -- provisioning -------------------------------------------------------------------------
def handle_from_email(email: str | None) -> str | None:
    """A handle candidate from an email's local part (``Jane.Doe+x@`` → ``jane.doe``)."""
    if not email or "@" not in email:
        return None
    local = email.split("@", 1)[0].split("+", 1)[0].lower()
    candidate = re.sub(r"[^a-z0-9_.-]+", "", local) if local.isascii() else ""
    candidate = candidate.strip(".-")[:HANDLE_MAX].rstrip(".-")
    return candidate if handle_problem(candidate) is None else None


def handle_candidates(base: str | None, attempts: int = 6) -> list[str]:
    """The preferred handle, then suffixed variants, then random ``user-<8 hex>`` ones."""
    found: list[str] = []
    if base:
        found.append(base)
        stem = base[: HANDLE_MAX - 5].rstrip(".-")
        found += [f"{stem}_{secrets.token_hex(2)}" for _ in range(3)]
    found += [f"user-{secrets.token_hex(4)}" for _ in range(attempts)]
    return found


@dataclass(frozen=True, slots=True)
class Account:
    """The caller's profile row as the request dependencies hand it out: read-only and cheap
    to rebuild from the cache (an ORM instance costs ~0.1 ms to validate)."""

    id: uuid.UUID
    sub: str
    handle: str
    display_name: str
    bio: str | None
    avatar_url: str | None
    email: str | None
    followers_count: int
    following_count: int
    tracks_count: int
    is_banned: bool
    banned_at: datetime | None
    deleted_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    @classmethod
    def of(cls, row: UserProfile) -> Account:
        return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})

    def to_cache(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_cache(cls, data: dict[str, Any]) -> Account:
        def when(value: str | None) -> datetime | None:
            return None if value is None else datetime.fromisoformat(value)

        return cls(
            **{
                **data,
                "id": uuid.UUID(data["id"]),
                "banned_at": when(data["banned_at"]),
                "deleted_at": when(data["deleted_at"]),
                "created_at": datetime.fromisoformat(data["created_at"]),
                "updated_at": datetime.fromisoformat(data["updated_at"]),
            }
        )


_sub_ids: OrderedDict[str, uuid.UUID] = OrderedDict()
"""sub → profile id, per process, in front of the shared ``sub:<sub>`` key in Redis. A stale
entry (an emptied test database) only costs a miss: the cached row must carry the same
``sub``, else the account is read from PostgreSQL and both mappings are written again."""


def _cached_account(data: Any, sub: str) -> Account | None:
    """The cached row if it is one of ``sub``'s: a tombstone, another subject's row or one
    written by another version of this code (a rolling deploy) is a miss, never an error."""
    if not isinstance(data, dict) or data.get("sub") != sub:
        return None
    try:
        return Account.from_cache(data)
    except (KeyError, TypeError, ValueError):
        return None


async def current_account(kernel: Kernel, principal: Principal) -> Account:
    """The caller's account through the cache: no SQL and no session on the common path,
    which every authenticated request takes (docs/PERFORMANCE.md); a miss reads (or creates)
    the row in a session of its own."""
    email = principal.email if principal.email and len(principal.email) <= EMAIL_MAX else None
    user_id = _sub_ids.get(principal.sub)
    if user_id is None and len(principal.sub) <= SUB_MAX:  # new to this process: ask Redis
        mapped = await kernel.cache.get(NAMESPACE, sub_key(principal.sub))
        user_id = uuid.UUID(mapped["id"]) if isinstance(mapped, dict) else None
    stale_email = False
    if user_id is not None:
        data = await kernel.cache.get(NAMESPACE, account_key(user_id))
        account = _cached_account(data, principal.sub)
        near = kernel.cache.near_cache(NAMESPACE)
        if account is None and data is not None and near is not None:
            near.drop([account_key(user_id)])  # a tombstone: not worth keeping in memory
        if account is not None:
            if email is None or email == account.email:
                return account
            stale_email = True  # the token brings a new address: ensure_profile stores it
    async with kernel.db.session() as session:
        account = Account.of(await ensure_profile(session, principal))
    await relay_after_commit(kernel, session)  # a first sight emitted ``user.created``
    if stale_email:
        await invalidate(kernel, [account.id])  # the cached row has the old address
    if _sub_ids.get(principal.sub) != account.id:
        _sub_ids[principal.sub] = account.id
        if len(_sub_ids) > SUB_IDS_MAX:
            _sub_ids.popitem(last=False)
        await kernel.cache.set(
            NAMESPACE, sub_key(principal.sub), {"id": str(account.id)}, SUB_TTL_SECONDS
        )
    await kernel.cache.set(
        NAMESPACE,
        account_key(account.id),
        account.to_cache(),
        ACCOUNT_TTL_SECONDS,
        only_if_absent=True,  # never over a tombstone (a change just committed) or a newer row
    )
    return account


async def ensure_profile(session: AsyncSession, principal: Principal) -> UserProfile:
    """The principal's profile, created on first sight (race-safe, exactly one row per sub).

    Returned detached from the session: callers read it, they never write through it.
    """
    if len(principal.sub) > SUB_MAX:
        raise Forbidden("The token's subject identifier is too long for an account.")
    email = principal.email if principal.email and len(principal.email) <= EMAIL_MAX else None
    profile = await _existing(session, principal.sub)
    if profile is not None and (email is None or email == profile.email):
        return profile  # the common case: one SELECT, no transaction
    async with session.begin():
        profile = await repo.get_by_sub(session, principal.sub)
        if profile is None:
            profile = await _provision(session, principal.sub, email)
        elif email is not None and email != profile.email:
            profile.email = email  # the token is the source of truth for the address
    session.expunge(profile)
    return profile


async def _existing(session: AsyncSession, sub: str) -> UserProfile | None:
    """The profile of ``sub`` read in autocommit (a single SELECT, detached), or ``None`` when it
    does not exist yet or the session is already in a transaction.

    Every authenticated request comes through here: a transaction would cost a ``BEGIN`` and a
    ``COMMIT`` round trip around the one statement (measured in bench/load.py, docs/PERFORMANCE.md).
    """
    if session.in_transaction():
        return None
    await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    try:
        profile = await repo.get_by_sub(session, sub)
    except BaseException:
        await session.rollback()
        raise
    await session.commit()  # ends the session transaction; no COMMIT reaches the server
    if profile is not None:
        session.expunge(profile)
    return profile


async def _provision(session: AsyncSession, sub: str, email: str | None) -> UserProfile:
    """INSERT … ON CONFLICT DO NOTHING, then SELECT: a concurrent first call that wins the
    race makes ours a no-op and we read its row; a handle clash moves on to the next name."""
    for handle in handle_candidates(handle_from_email(email)):
        now = utcnow()
        new_id = await repo.insert_if_absent(
            session,
            {
                "id": uuid.uuid4(),
                "sub": sub,
                "handle": handle,
                "display_name": handle,
                "email": email,
                "created_at": now,
                "updated_at": now,
            },
        )
        profile = await repo.get_by_sub(session, sub)
        if profile is None:
            continue  # the handle belongs to someone else
        if new_id is not None:
            emit(session, "user.created", {"user_id": str(profile.id), "handle": profile.handle})
        return profile
    raise RuntimeError("could not find a free handle for a new profile")


def check_usable(profile: UserProfile | Account, *, writing: bool) -> None:
    """Deleted accounts may do nothing; banned ones may read but not write."""
    if profile.is_deleted:
        raise AccountDeleted("This account has been deleted.")
    if writing and profile.is_banned:
        raise AccountBanned("This account is banned and cannot make changes.")


# -- self-service -------------------------------------------------------------------------
def _is_handle_clash(exc: IntegrityError) -> bool:
    diag = getattr(exc.orig, "diag", None)
    return getattr(diag, "constraint_name", None) == "uq_user_profiles_handle"


async def _locked_usable(session: AsyncSession, user_id: uuid.UUID) -> UserProfile:
    """The caller's row under FOR UPDATE, re-checked: a ban or delete may just have landed."""
    row = await repo.get_by_id(session, user_id, for_update=True)
    if row is None:
        raise AccountDeleted("This account has been deleted.")
    check_usable(row, writing=True)
    return row


async def update_profile(
    kernel: Kernel, session: AsyncSession, user_id: uuid.UUID, changes: dict[str, Any]
) -> UserProfile:
    """Apply a PATCH (already validated); a taken handle is 409 even when two users race."""
    old_handle: str | None = None
    try:
        async with session.begin():
            row = await _locked_usable(session, user_id)
            changed = sorted(name for name, value in changes.items() if getattr(row, name) != value)
            if changed:
                old_handle = row.handle
                for name in changed:
                    setattr(row, name, changes[name])
                row.updated_at = utcnow()
                await session.flush()  # a handle clash surfaces here, as IntegrityError
                emit(
                    session,
                    "user.updated",
                    {"user_id": str(row.id), "handle": row.handle, "changed": changed},
                )
    except IntegrityError as exc:
        if _is_handle_clash(exc):
            raise Conflict(
                f"The handle {changes.get('handle')!r} is already taken.", code="DUPLICATE_RESOURCE"
            ) from exc
        raise
    session.expunge(row)
    if old_handle is not None:
        await invalidate(kernel, [row.id], handles={old_handle, row.handle})
    return row


async def delete_profile(kernel: Kernel, session: AsyncSession, user_id: uuid.UUID) -> None:
    """Soft delete: the row stays (handle kept, so nobody can impersonate the account)."""
    async with session.begin():
        row = await _locked_usable(session, user_id)
        row.deleted_at = row.updated_at = utcnow()
        emit(session, "user.deleted", {"user_id": str(row.id), "handle": row.handle})
        handle = row.handle
    await invalidate(kernel, [user_id], handles={handle})


# -- reads --------------------------------------------------------------------------------
def is_visible(profile: UserProfile, viewer: Principal | None = None) -> bool:
    """Deleted profiles are gone for everyone; banned ones only for moderators and the owner."""
    if profile.is_deleted:
        return False
    if not profile.is_banned:
        return True
    return viewer is not None and (viewer.is_moderator or viewer.sub == profile.sub)


def public_view(profile: UserProfile) -> dict[str, Any]:
    return ProfileRead.model_validate(profile).model_dump(mode="json")


async def read_profile(
    kernel: Kernel, session: AsyncSession, user_id: uuid.UUID, viewer: Principal | None
) -> ProfileRead:
    """Through the cache, which only ever holds profiles visible to everyone."""

    async def load() -> dict[str, Any] | None:
        row = await _in_transaction(session, lambda: repo.get_by_id(session, user_id))
        return public_view(row) if row is not None and is_visible(row) else None

    data = await kernel.cache.get_or_set(NAMESPACE, id_key(user_id), load)
    if data is not None:
        return ProfileRead.model_validate(data)
    if viewer is not None:  # a moderator, or the owner, may still see a banned profile
        row = await _in_transaction(session, lambda: repo.get_by_id(session, user_id))
        if row is not None and is_visible(row, viewer):
            return ProfileRead.model_validate(row)
    raise UserNotFound(f"No user with id {user_id}.")


async def read_profile_by_handle(
    kernel: Kernel, session: AsyncSession, raw_handle: str, viewer: Principal | None
) -> ProfileRead:
    """Case-insensitive; the cached handle → id mapping is checked against the profile read."""
    not_found = UserNotFound(f"No user with handle {raw_handle!r}.")
    if not (raw_handle.isascii() and 1 <= len(raw_handle) <= HANDLE_MAX):  # cannot exist
        raise not_found
    handle = raw_handle.lower()

    async def load() -> dict[str, str] | None:
        row = await _in_transaction(session, lambda: repo.get_by_handle(session, handle))
        return {"id": str(row.id)} if row is not None and not row.is_deleted else None

    for _ in range(2):
        mapping = await kernel.cache.get_or_set(NAMESPACE, handle_key(handle), load)
        if mapping is None:
            break
        try:
            profile = await read_profile(kernel, session, uuid.UUID(mapping["id"]), viewer)
        except UserNotFound:
            profile = None
        if profile is not None and profile.handle == handle:
            return profile
        # The mapping may be stale (the handle moved on): drop it and look once more.
        await kernel.cache.invalidate(NAMESPACE, handle_key(handle))
    raise not_found


# -- used by other skills through api.py ------------------------------------------------
def mark_dirty(session: AsyncSession, user_id: uuid.UUID) -> None:
    session.info.setdefault(DIRTY, set()).add(user_id)


async def invalidate(
    kernel: Kernel, user_ids: Iterable[uuid.UUID], handles: Iterable[str] = ()
) -> None:
    """Drop cached profiles (and handle mappings); call only after the change committed."""
    ids = list(user_ids)
    keys = [key(uid) for uid in ids for key in (id_key, account_key)]
    keys += [handle_key(h) for h in handles if h]
    if keys:  # tried even while the circuit is open, like every invalidation
        await kernel.cache.invalidate(NAMESPACE, *keys)
    for uid in ids:  # then a tombstone in the account's place: see TOMBSTONE_SECONDS
        await kernel.cache.set(NAMESPACE, account_key(uid), TOMBSTONE, TOMBSTONE_SECONDS)


async def invalidate_pending(kernel: Kernel, session: AsyncSession) -> None:
    """Invalidate what the API functions changed through ``session`` (after its commit)."""
    dirty: set[uuid.UUID] = session.info.pop(DIRTY, set())
    await invalidate(kernel, dirty)


async def adjust_counters(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    followers: int = 0,
    following: int = 0,
    tracks: int = 0,
) -> bool:
    deltas = {
        name: delta
        for name, delta in (
            ("followers_count", followers),
            ("following_count", following),
            ("tracks_count", tracks),
        )
        if delta
    }
    if not deltas:
        return True  # nothing to change
    found = await repo.adjust_counters(session, user_id, deltas)
    if found:
        mark_dirty(session, user_id)
    return found


async def set_banned(session: AsyncSession, user_id: uuid.UUID, banned: bool) -> bool:
    changed = await repo.set_banned(session, user_id, banned, utcnow())
    if changed:
        emit(session, "user.banned" if banned else "user.unbanned", {"user_id": str(user_id)})
        mark_dirty(session, user_id)
        return True
    if await repo.get_by_id(session, user_id) is None:
        raise UserNotFound(f"No user with id {user_id}.")
    return False
