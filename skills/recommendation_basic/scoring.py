"""Blending signals into a ranked, explained list (pure functions, no I/O).

Each candidate gets ``CO_WEIGHT · co + TAG_WEIGHT · tag (+ MOOD_BONUS)``, every part in
[0, 1]: ``co`` is how many neighbours liked it relative to the best candidate, ``tag`` the share
of the taste profile (or of the seed track's tags) it carries. Co-likes weigh more: they are
behaviour, while tags are what uploaders typed. The reason shown is the larger part.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

CO_WEIGHT = 0.6
TAG_WEIGHT = 0.4
MOOD_BONUS = 0.1
LIKE_WEIGHT, PLAY_WEIGHT = 2.0, 1.0


@dataclass
class Scored:
    track_id: uuid.UUID
    score: float
    reason: dict[str, Any] = field(default_factory=dict)

    def cached(self) -> dict[str, Any]:
        return {"id": str(self.track_id), "score": round(self.score, 6), "reason": self.reason}


def taste_profile(
    liked: Iterable[uuid.UUID],
    played: Iterable[uuid.UUID],
    tags: Mapping[uuid.UUID, list[tuple[int, str]]],
    top: int,
) -> dict[tuple[int, str], float]:
    """The ``top`` tags of what the listener liked (×2) and played lately (×1)."""
    weights: dict[tuple[int, str], float] = {}
    for track_ids, weight in ((liked, LIKE_WEIGHT), (played, PLAY_WEIGHT)):
        for track_id in track_ids:
            for tag in tags.get(track_id, []):
                weights[tag] = weights.get(tag, 0.0) + weight
    strongest = sorted(weights.items(), key=lambda item: (-item[1], item[0]))
    return dict(strongest[:top])


def blend(
    *,
    co: Mapping[uuid.UUID, tuple[int, uuid.UUID]],
    tagged: Iterable[tuple[uuid.UUID, int]],
    tag_weights: Mapping[tuple[int, str], float],
    tag_kind: str,
    mood: str | None = None,
    moods: Mapping[uuid.UUID, str | None] | None = None,
) -> list[Scored]:
    """Score every candidate (co-liked or tagged), best first; ties by id for stable pages."""
    names = {tag_id: name for tag_id, name in tag_weights}
    weight_of = {tag_id: weight for (tag_id, _), weight in tag_weights.items()}
    total = sum(weight_of.values()) or 1.0
    matched: dict[uuid.UUID, set[int]] = {}
    for track_id, tag_id in tagged:
        matched.setdefault(track_id, set()).add(tag_id)
    best = max((n for n, _ in co.values()), default=1)
    scored = []
    for track_id in set(co) | set(matched):
        n, via = co.get(track_id, (0, None))
        co_part = CO_WEIGHT * n / best
        tag_ids = sorted(matched.get(track_id, ()), key=lambda t: -weight_of.get(t, 0))
        tag_part = TAG_WEIGHT * sum(weight_of.get(t, 0) for t in tag_ids) / total
        bonus = MOOD_BONUS if mood and moods and moods.get(track_id) == mood else 0.0
        if co_part > 0 and co_part >= tag_part:
            reason: dict[str, Any] = {"kind": "co_liked", "listeners": n, "track_id": str(via)}
        else:
            reason = {"kind": tag_kind, "tags": [names[t] for t in tag_ids]}
        scored.append(Scored(track_id, co_part + tag_part + bonus, reason))
    scored.sort(key=lambda s: (-s.score, str(s.track_id)))
    return scored


def cap_per_owner(
    scored: Iterable[Scored], owners: Mapping[uuid.UUID, uuid.UUID], cap: int, size: int
) -> list[Scored]:
    """At most ``cap`` tracks per artist, at most ``size`` in all: a list, not one discography.
    Candidates missing from ``owners`` (not listable, or the caller's own) are dropped."""
    kept: list[Scored] = []
    per_owner: Counter[uuid.UUID] = Counter()
    for item in scored:
        owner = owners.get(item.track_id)
        if owner is None or per_owner[owner] >= cap:
            continue
        per_owner[owner] += 1
        kept.append(item)
        if len(kept) >= size:
            break
    return kept
