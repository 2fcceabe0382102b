"""Settings: every option is a FRONTDESK_* environment variable, parsed and validated once.

A secret may also come from a file named by FRONTDESK_<NAME>_FILE (Docker/Kubernetes secrets),
which wins over the plain variable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

GIB = 1024**3

_FILE_SECRETS = ("database_url", "admin_token", "secret_key")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FRONTDESK_", extra="ignore", frozen=True)

    #: SQLite file (default, under data_dir) or postgresql://user@host:port/db
    database_url: str = ""
    #: where the SQLite database and uploaded files live
    data_dir: Path = Path("var")
    #: where file bytes are kept; defaults to <data_dir>/files
    files_dir: Path | None = None

    #: the address clients reach this server at (https://desk.example.com), for the URLs it
    #: hands out (v4 auth's api_url and files_url); empty: taken from each request's Host
    public_url: str = ""

    #: Bearer token of the admin JSON API (/admin/api/...); empty switches that API off
    admin_token: str = ""
    #: signs the expiring file links sent to Planfix chat providers; empty: a key generated
    #: once and kept in the database (table server_keys), shared by every process
    secret_key: str = ""

    #: lifetime of access tokens issued by /v1/token and /v4/auth
    token_ttl_seconds: int = Field(default=24 * 3600, gt=0)
    #: requests allowed per extension (or user) per window; 0 switches limiting off
    rate_limit_requests: int = Field(default=5000, ge=0)
    rate_limit_window_seconds: int = Field(default=600, gt=0)

    #: the documented 2 GB cap on one uploaded file
    max_upload_bytes: int = Field(default=2 * GIB, gt=0)
    #: uploaded files that no message references are deleted after this long
    unattached_file_ttl_seconds: int = Field(default=24 * 3600, gt=0)
    #: how often the maintenance loop (file and token clean-up) runs
    maintenance_interval_seconds: float = Field(default=300.0, gt=0)
    #: sent deliveries (and their attempts) are deleted this many days after they were sent;
    #: 0 keeps them. Dead and pending ones are never deleted.
    delivery_history_days: float = Field(default=30.0, ge=0, le=36500)

    #: SQLite durability: NORMAL loses at most the last commits on power loss, FULL none
    sqlite_synchronous: str = "NORMAL"
    #: PostgreSQL connections per process
    pg_pool_size: int = Field(default=8, gt=0)

    #: outbound webhooks (frontdesk.delivery): seconds before each retry; attempts = len + 1.
    #: Pyrus retries after 61 s and 122 s (spec.md §3.3)
    delivery_retry_delays: tuple[float, ...] = (61.0, 122.0)
    delivery_connect_timeout: float = Field(default=5.0, gt=0)
    #: Pyrus gives a webhook receiver 60 s to answer
    delivery_read_timeout: float = Field(default=60.0, gt=0)
    #: webhooks in flight per worker process (one per channel at a time)
    delivery_concurrency: int = Field(default=64, gt=0)
    #: a claimed delivery is taken as abandoned (its worker died) this long after its
    #: request's own time limit ran out, and is sent again
    delivery_lease_margin_seconds: float = Field(default=30.0, ge=0)
    #: how often an idle worker looks for due deliveries
    delivery_poll_seconds: float = Field(default=0.25, gt=0)
    #: send to private, loopback and link-local addresses (off: no SSRF through a webhook
    #: URL; on for local connector development and tests)
    delivery_allow_private: bool = False
    #: run the delivery worker inside `frontdesk serve` (off when `frontdesk worker` runs)
    delivery_in_process: bool = True
    #: GET /pulse to every extension with a URL this often (0: never)
    pulse_interval_seconds: float = Field(default=60.0, ge=0)

    #: Planfix attachments given by URL are fetched in the background (delivery.fetcher):
    #: the longest one download may take, start to end (the size cap is max_upload_bytes)
    attachment_fetch_seconds: float = Field(default=300.0, gt=0)
    #: seconds before each retry of a fetch that failed for a passing reason (5xx, timeout)
    attachment_fetch_retry_delays: tuple[float, ...] = (30.0, 300.0)
    #: downloads in flight per worker process
    attachment_fetch_concurrency: int = Field(default=4, gt=0)

    log_level: str = "INFO"

    @field_validator("sqlite_synchronous")
    @classmethod
    def _known_sync_mode(cls, value: str) -> str:
        mode = value.upper()
        if mode not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ValueError("must be OFF, NORMAL, FULL or EXTRA")
        return mode

    @field_validator("delivery_history_days")
    @classmethod
    def _history_of_a_day_or_more(cls, value: float) -> float:
        # shorter, a worker's late outcome could arrive for a delivery already deleted
        if 0 < value < 1:
            raise ValueError("must be 0 (keep all) or at least 1 day")
        return value

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'frontdesk.db'}"

    @property
    def effective_files_dir(self) -> Path:
        return self.files_dir if self.files_dir is not None else self.data_dir / "files"

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Read FRONTDESK_* (and FRONTDESK_*_FILE secrets) from the environment."""
        values: dict[str, Any] = {}
        for name in _FILE_SECRETS:
            path = os.environ.get(f"FRONTDESK_{name.upper()}_FILE")
            if path:
                values[name] = Path(path).read_text().strip()
        values.update(overrides)
        return cls(**values)
