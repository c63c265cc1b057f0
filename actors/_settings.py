"""Threadline's settings: ``THREADLINE_*`` environment variables, also read from a ``.env`` file.

The public contract (docs/architecture.md §4) names the first block; the rest are operational
knobs with production defaults. A channel without credentials is disabled and its route answers 404.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "parse_bind"]


def parse_bind(bind: str) -> tuple[str, int]:
    """Split ``host:port`` (IPv6 hosts in brackets). Raises ValueError when malformed."""
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected host:port, got {bind!r}")
    return host.strip("[]"), int(port)


class Settings(BaseSettings):
    """Every setting of a Threadline process. Frozen: read once at start-up."""

    model_config = SettingsConfigDict(
        env_prefix="THREADLINE_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    # --- the public contract (docs/architecture.md §4) ---------------------------------------
    database_url: str = "sqlite:///./threadline.db"
    bind: str = "127.0.0.1:8080"
    metrics_bind: str = "127.0.0.1:9464"
    public_url: str = "http://127.0.0.1:8080"
    intercom_base_url: str = "https://api.intercom.io"
    intercom_access_token: SecretStr | None = None
    intercom_client_secret: SecretStr | None = None
    intercom_default_admin_id: str | None = None
    conversation_buffer_seconds: float = Field(default=0.0, ge=0.0)
    whatsapp_app_secret: SecretStr | None = None
    whatsapp_verify_token: SecretStr | None = None
    whatsapp_access_token: SecretStr | None = None
    whatsapp_base_url: str = "https://graph.facebook.com/v21.0"
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_base_url: str = "https://api.twilio.com"
    telegram_bot_token: SecretStr | None = None
    telegram_secret_token: SecretStr | None = None
    telegram_base_url: str = "https://api.telegram.org"

    # --- operational knobs ----------------------------------------------------------------------
    api_token: SecretStr | None = None
    """Bearer token for ``POST /api/messages``; the route answers 404 without one."""
    metrics_token: SecretStr | None = None
    """Bearer token for ``GET /metrics``; required when the metrics bind is not loopback."""
    intercom_version: str = "2.16"
    intercom_timeout_seconds: float = Field(default=20.0, gt=0)
    """A request to Intercom that takes longer fails as a timeout (and is retried)."""
    intercom_rate_limit_per_window: int = Field(default=1666, ge=1)
    """Requests per 10-second window this process may send (10,000/min spread over 6 windows)."""
    reply_format: str = "{teammate}: {text}"
    """How a teammate's reply reads on the customer's channel ({teammate} and {text})."""
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_media_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    intercom_max_attachment_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    """Larger files are linked (served by the bridge under /media/) with a note, not uploaded."""
    max_attachments_per_message: int = Field(default=10, ge=1, le=10)
    media_dir: str = "./threadline-media"
    mailbox_capacity: int = Field(default=64, ge=1)
    actor_idle_seconds: float = Field(default=300.0, gt=0)
    max_live_actors: int = Field(default=5000, ge=1)
    """Thread actors alive at once; threads beyond wait in the journal (idle ones make room)."""
    retry_max_attempts: int = Field(default=10, ge=1)
    retry_base_seconds: float = Field(default=0.5, gt=0)
    retry_cap_seconds: float = Field(default=60.0, gt=0)
    conversation_gone_retries: int = Field(default=2, ge=0)
    """Retries of a 404 on a conversation before the bridge opens a new one."""
    restart_max: int = Field(default=3, ge=0)
    restart_period_seconds: float = Field(default=30.0, gt=0)
    parked_resume_seconds: float = Field(default=30.0, gt=0)
    shutdown_drain_seconds: float = Field(default=20.0, ge=0)
    journal_retention_seconds: float = Field(default=8 * 86400.0, gt=0)
    """Done entries (and their dedupe ids) are kept this long: providers redeliver for days."""
    partitions: int = Field(default=64, ge=1)
    node_id: str | None = Field(default=None, min_length=1, max_length=200)
    """This process's name in cluster mode (default: host name and process id)."""
    lease_seconds: float = Field(default=15.0, gt=0)
    """Cluster mode: a dead node's partitions move to the others after this long."""
    rebalance_step: int = Field(default=8, ge=1)
    """Cluster mode: partitions a node hands over per lease tick when nodes join."""
    build_commit: str | None = None
    """The commit the image was built from (``threadline_build_info``); the image sets it."""
    log_format: Literal["auto", "json", "text"] = "auto"
    log_level: str = "INFO"

    @field_validator("bind", "metrics_bind")
    @classmethod
    def _valid_bind(cls, value: str) -> str:
        if value.startswith("fd://") and value[5:].isdigit():
            return value  # an inherited listening socket (serve --workers)
        parse_bind(value)
        return value

    @field_validator("database_url")
    @classmethod
    def _valid_database_url(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("expected sqlite:///path or postgresql://…")
        return value

    @property
    def telegram_bot_id(self) -> str | None:
        """The bot's numeric id: the part of the token before the colon."""
        if self.telegram_bot_token is None:
            return None
        return self.telegram_bot_token.get_secret_value().split(":", 1)[0]

    @property
    def sqlite_path(self) -> str | None:
        """The SQLite file path, or None for PostgreSQL."""
        if self.database_url.startswith("sqlite:///"):
            return self.database_url.removeprefix("sqlite:///")
        return None
