"""Time, always timezone-aware UTC."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, without fractions: the form Pyrus answers in."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
