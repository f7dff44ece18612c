"""The users table and the record of failed PIN logins that drives lockout."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from analyst.db import Base, UTCDateTime


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # HMAC-SHA256 of the badge number under the installation's pepper; unique so a badge finds one user.
    badge_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    pin_hash: Mapped[str | None] = mapped_column(String(255))
    # Lower case; unique when set (mail and uploads find the user by it: users by email).
    email: Mapped[str] = mapped_column(String(255), default="")
    # False: denied. Held jobs stay held but are not released; logins and new submissions are refused.
    allowed: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_users_email", "email", unique=True, sqlite_where=text("email != ''"),
                            postgresql_where=text("email != ''")),)


class LoginFailure(Base):
    """A failed PIN login for a user name, known or not (so lockout does not reveal which names exist)."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_name: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
