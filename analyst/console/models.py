"""The console's administrator accounts and their signed-in sessions (server side, so a logout ends one)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from analyst.db import Base, UTCDateTime

READ_ONLY, FULL = "read-only", "full"
ROLES = (READ_ONLY, FULL)


class ConsoleAccount(Base):
    """An operator of the console: a name, a role and an scrypt hash of the password (never the password)."""

    __tablename__ = "console_accounts"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConsoleSession(Base):
    """A browser signed in: stored by the digest of its cookie's token, with the account's password
    fingerprint at sign-in (a new password ends every older session)."""

    __tablename__ = "console_sessions"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    account: Mapped[str] = mapped_column(String(64), index=True)
    credential: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
