"""The access log of `serve --access-log`, without the secrets a query string can carry.

Old Pyrus pages sent credentials as query parameters (`GET /v1/token?client_id=&secret=`,
`GET /v4/auth?login=&security_key=`), and Frontdesk still takes them so; uvicorn's access
line prints the whole path with its query. Log files are kept, copied and shared far more
freely than a password file, so the values of those parameters are written as ***.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any
from urllib.parse import unquote_plus

import uvicorn.config

#: query parameters whose values are credentials (names compared without case)
SECRET_PARAMETERS = frozenset(
    {"secret", "security_key", "access_token", "token", "planfix_token", "password", "sig"}
)
_PARAMETER = re.compile(r"([?&;])([^=&;#]*)=([^&;#]*)")


def redacted(path: str) -> str:
    """`path` with the values of its secret query parameters replaced by ***."""
    if "?" not in path:
        return path
    head, _, query = path.partition("?")

    def hide(found: re.Match[str]) -> str:
        name = unquote_plus(found[2]).strip().lower()
        return f"{found[1]}{found[2]}=***" if name in SECRET_PARAMETERS else found[0]

    return head + _PARAMETER.sub(hide, "?" + query)


class RedactSecrets(logging.Filter):
    """Rewrites uvicorn's access record: (client, method, path with query, version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (*args[:2], redacted(args[2]), *args[3:])
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's own logging configuration, its access lines passed through RedactSecrets
    (a configuration, not a filter added here: each worker process applies it itself)."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_secrets"] = {"()": RedactSecrets}
    config["handlers"]["access"]["filters"] = ["redact_secrets"]
    return config
