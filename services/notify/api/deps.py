"""FastAPI dependencies every router shares: the database session and the settings built at start-up."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Request
from sqlalchemy.orm import Session

from services.notify.settings import NotifySettings


def db_session(request: Request) -> Iterator[Session]:
    """A session for one request; routes commit what they change, anything else is rolled back."""
    session: Session = request.app.state.sessions()
    try:
        yield session
    finally:
        session.close()


def notify_settings(request: Request) -> NotifySettings:
    """The settings the app was created with."""
    return request.app.state.settings
