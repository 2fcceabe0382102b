"""The one error type the core raises, and the stable codes it carries.

    FrontdeskError(code, message)      status from STATUS_BY_CODE, 400 when unlisted
     ├── Unauthorized                  401: credentials and tokens
     ├── Forbidden                     403: access_denied_* (API v4 access rules)
     ├── NotFound                      404: a file or page that is not there (or not yours)
     ├── TooLarge                      413: an upload over the cap
     ├── RateLimited                   429: over quota, carries retry_after seconds
     └── Busy                          429: the store is busy, carries retry_after seconds

Codes are the protocols' own (Pyrus `error_code` values); each protocol renders the error in
its wire format in one place. A `Problem` is the same pair returned, not raised: a warning
on a request that was processed anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

# Statuses follow the grouping of Pyrus' official client (spec.md §1.2).
STATUS_BY_CODE: dict[str, int] = {
    "authorization_error": 401,
    "token_not_specified": 401,
    "invalid_token": 401,
    "expired_token": 401,
    "revoked_token": 401,
    "invalid_credentials": 401,
    "account_blocked": 401,
    "file_is_missing": 404,
    "not_found": 404,
    "too_large_file": 413,
    "too_many_requests": 429,
    "server_error": 500,
}


def _status_of(code: str) -> int:
    """Listed codes as listed; `access_denied_*` is 403 (Pyrus' grouping); the rest 400."""
    found = STATUS_BY_CODE.get(code)
    if found is not None:
        return found
    return 403 if code.startswith("access_denied") else 400


#: Pyrus caps the `error` text at 300 characters.
MAX_MESSAGE_LENGTH = 300


def clip(message: str, limit: int = MAX_MESSAGE_LENGTH) -> str:
    if len(message) <= limit:
        return message
    return message[: limit - 1] + "…"


@dataclass(frozen=True)
class Problem:
    """An error code with its human message, reported without failing the request.

    The message is kept whole: the Extensions API lists what was ignored (every unknown
    field code, every ignored file guid) in `error_message`; `error` is clipped."""

    code: str
    message: str


class FrontdeskError(Exception):
    """The request cannot be processed."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = clip(message)
        self.status = status or _status_of(code)

    @property
    def problem(self) -> Problem:
        return Problem(self.code, self.message)


class Unauthorized(FrontdeskError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message, 401)


class Forbidden(FrontdeskError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message, 403)


class NotFound(FrontdeskError):
    def __init__(self, message: str = "Not found", code: str = "not_found") -> None:
        super().__init__(code, message, 404)


class TooLarge(FrontdeskError):
    def __init__(self, message: str, code: str = "too_large_file") -> None:
        super().__init__(code, message, 413)


class RateLimited(FrontdeskError):
    def __init__(self, retry_after: int, limit: int) -> None:
        super().__init__(
            "too_many_requests",
            f"More than {limit} requests in the window; retry in {retry_after} s",
            429,
        )
        self.retry_after = retry_after
        self.limit = limit


class Busy(FrontdeskError):
    """The store cannot take the write now (another process holds it); retry soon.

    Answered as 429 with Retry-After, which every Pyrus client already honours."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__("too_many_requests", message, 429)
        self.retry_after = retry_after


def required(*names: str) -> FrontdeskError:
    """The error for missing required parameters, naming each one."""
    return FrontdeskError(
        "required_parameters_not_specified",
        "Required parameters not specified: " + ", ".join(names),
    )


def invalid(message: str) -> FrontdeskError:
    return FrontdeskError("validation_error", message)
