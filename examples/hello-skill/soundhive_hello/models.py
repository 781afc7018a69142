"""The example skill's tables: each greeting, and the tally its actor keeps."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column, DateTime
from sqlmodel import Field, SQLModel

from core.events import utcnow


class Greeting(SQLModel, table=True):
    __tablename__ = "hello_greetings"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=80, index=True)
    author_sub: str = Field(max_length=255)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class GreetingTally(SQLModel, table=True):
    """Greetings counted by the actor; ``last_event_id`` makes redelivery harmless."""

    __tablename__ = "hello_tallies"

    name: str = Field(max_length=80, primary_key=True)
    count: int = 0
    last_event_id: uuid.UUID | None = None
