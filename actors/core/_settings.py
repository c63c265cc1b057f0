"""Threadline's settings: ``THREADLINE_*`` environment variables, also read from a ``.env`` file.

The public contract (docs/architecture.md §4) names the first block; the rest are operational
knobs with production defaults. A channel without credentials is disabled and its route answers 404.

A channel is disabled only when its variables are *absent*. A secret that is present but empty,
a placeholder (``CHANGE-ME``, ``changeme``, ``xxx``, ``TODO``, …) or shorter than
``MIN_SECRET_LENGTH`` is a configuration error (``Settings.secret_problems``; the bridge refuses
to start), never a silently disabled channel nor a route that accepts the empty key.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from channels import Channel

from ._accounts import AccountsFile, AccountsFileError, load_accounts
from ._channel_settings import CHANNEL_FIELDS, ChannelViews, account_view
from ._profiles import AccountProfile, channel_tags, with_account
from ._secrets import MIN_SECRET_LENGTH, format_problem, is_placeholder, secret_problem

__all__ = [
    "MIN_SECRET_LENGTH",
    "Settings",
    "is_placeholder",
    "parse_bind",
    "secret_problem",
]

_SECRETS = (
    "intercom_access_token",
    "intercom_client_secret",
    *(f"{c.value}_{name}" for c, fields in CHANNEL_FIELDS.items() for name in fields.secrets),
    "api_token",
    "metrics_token",
)
"""Every secret setting, in the order its problems are told."""


def parse_bind(bind: str) -> tuple[str, int]:
    """Split ``host:port`` (IPv6 hosts in brackets). Raises ValueError when malformed."""
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected host:port, got {bind!r}")
    return host.strip("[]"), int(port)


class Settings(BaseSettings, ChannelViews):
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
    whatsapp_business_account_id: str | None = Field(default=None, pattern=r"^[0-9]{1,32}$")
    """The WhatsApp Business Account (WABA) whose approved message templates the send API's
    and the re-engagement templates are checked against."""
    whatsapp_reengagement_template: str | None = Field(default=None, pattern=r"^[a-z0-9_]{1,512}$")
    """The approved template sent when a teammate replies outside the 24-hour window (the
    reply is then held until the customer answers); unset: the reply is not sent, a note says
    why."""
    whatsapp_reengagement_language: str = Field(
        default="en_US", pattern=r"^[A-Za-z]{2,3}(_[A-Za-z0-9]{2,8})?$"
    )
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_base_url: str = "https://api.twilio.com"
    telegram_bot_token: SecretStr | None = None
    telegram_secret_token: SecretStr | None = None
    telegram_base_url: str = "https://api.telegram.org"
    telegram_groups: Literal["ignore", "per-member"] = "ignore"
    """Messages from Telegram group, supergroup and channel chats: acknowledged and counted
    (``ignore``), or bridged per member (``per-member``: one thread per sender, the group's
    title noted in the message; replies go to the member's private chat with the bot)."""
    messenger_app_secret: SecretStr | None = None
    """The Meta app's secret: checks the Messenger webhooks' ``X-Hub-Signature-256``."""
    messenger_verify_token: SecretStr | None = None
    """Answers Meta's ``GET /webhooks/messenger`` verification handshake."""
    messenger_page_access_token: SecretStr | None = None
    """The Page access token the replies are sent with."""
    messenger_base_url: str = "https://graph.facebook.com/v21.0"
    messenger_human_agent: bool = True
    """A teammate's reply more than 24 hours after the customer's last message goes tagged
    ``HUMAN_AGENT`` (allowed up to 7 days; the app needs Meta's Human Agent permission), when
    Meta refuses it untagged; off: it is not sent, a note says why."""
    instagram_app_secret: SecretStr | None = None
    """The app secret that signs the Instagram webhooks (the Instagram app's with Instagram
    Login, the Facebook app's with Facebook Login)."""
    instagram_verify_token: SecretStr | None = None
    """Answers Meta's ``GET /webhooks/instagram`` verification handshake."""
    instagram_access_token: SecretStr | None = None
    """The Instagram user access token (or, with Facebook Login, the Page's) replies are sent
    with."""
    instagram_base_url: str = "https://graph.instagram.com/v21.0"
    instagram_human_agent: bool = True
    """As ``THREADLINE_MESSENGER_HUMAN_AGENT``, for Instagram."""
    viber_auth_token: SecretStr | None = None
    """The Viber bot's auth token: it sends (``X-Viber-Auth-Token``) and checks the callbacks'
    ``X-Viber-Content-Signature``."""
    viber_base_url: str = "https://chatapi.viber.com"
    viber_bot_name: str | None = Field(default=None, min_length=1, max_length=28)
    """The sender name of every Viber message (``sender.name``, 1-28 characters): the bot's
    name as customers see it. Required with ``THREADLINE_VIBER_AUTH_TOKEN``."""
    line_channel_secret: SecretStr | None = None
    """The LINE channel's secret: checks the webhooks' ``x-line-signature``."""
    line_channel_access_token: SecretStr | None = None
    """The LINE channel's (long-lived) access token: replies, pushes and content downloads."""
    line_base_url: str = "https://api.line.me"
    line_data_base_url: str = "https://api-data.line.me"
    """Where LINE serves the content of customers' files (``/v2/bot/message/{id}/content``)."""
    line_groups: Literal["ignore", "per-member"] = "ignore"
    """Messages from LINE group chats and rooms: acknowledged and counted (``ignore``), or
    bridged per member (``per-member``: one thread per sender LINE names, the group noted in
    the message; replies are pushed to the member's own chat with the account)."""
    accounts_file: str | None = None
    """A TOML file listing any number of WhatsApp apps, Twilio accounts, Telegram and Viber bots,
    each with its credentials, numbers and Intercom profile (``actors/core/_accounts.py``). A
    channel kind is configured either there or by its ``THREADLINE_<CHANNEL>_*`` credential
    variables (the one-account shorthand), never both."""

    # --- operational knobs ----------------------------------------------------------------------
    api_token: SecretStr | None = None
    """Bearer token for ``POST /api/messages``; the route answers 404 without one."""
    metrics_token: SecretStr | None = None
    """Bearer token for ``GET /metrics``; required when the metrics bind is not loopback."""
    intercom_version: str = "2.16"
    intercom_timeout_seconds: float = Field(default=20.0, gt=0)
    """A request to Intercom that takes longer fails as a timeout (and is retried)."""
    channel_timeout_seconds: float = Field(default=30.0, gt=0)
    """A provider's answer to a send taking longer: the send is in doubt (it may have gone out)
    and is not repeated; a note says so."""
    intercom_rate_limit_per_window: int = Field(default=1666, ge=1)
    """Requests per 10-second window (10,000/min spread over 6 windows): the whole app's budget,
    shared by every node on PostgreSQL (a counter per window in the journal), not per process."""
    whatsapp_template_cache_seconds: float = Field(default=600.0, ge=0)
    """How long the WABA's template list is kept before it is fetched again."""
    reply_format: str = "{teammate}: {text}"
    """How a teammate's reply reads on the customer's channel ({teammate} and {text})."""
    intercom_team_id: str | None = Field(default=None, pattern=r"^[0-9]{1,32}$")
    """The Intercom team every new conversation is assigned to (an ``assignment`` part by the
    default operator); unset: not assigned to a team."""
    intercom_assignee_id: str | None = Field(default=None, pattern=r"^[0-9]{1,32}$")
    """The teammate (admin id) every new conversation is assigned to; unset: nobody."""
    conversation_tags: str = Field(default="", max_length=2000)
    """Tags put on every new conversation, comma-separated; ``{channel}`` is the channel's
    name (``whatsapp``, ``twilio``, ``telegram``, ``messenger``, ``instagram``, ``viber``,
    ``line``). Empty: no tags."""
    contact_channel_attribute: str | None = Field(
        default=None, pattern=r"^[A-Za-z][A-Za-z0-9_]{0,189}$"
    )
    """A contact custom data attribute naming the channels the contact wrote from
    (``whatsapp,twilio``), created in the workspace when missing; unset: not kept."""
    contact_match: Literal["recent", "lead", "user"] = "recent"
    """Which of several Intercom contacts sharing a customer's phone (or channel id) is theirs:
    the most recently updated (``recent``), or the most recently updated lead (``lead``) or
    user (``user``) when there is one, else the most recently updated."""
    intercom_run_assignment_rules: bool = False
    """Run the workspace's assignment rules on every new conversation (Intercom deprecated the
    endpoint in API 2.12)."""
    intercom_mark_read: bool = False
    """Mark bridged conversations read, so that Intercom does not email the customer a copy
    of the teammates' replies the bridge already delivered."""
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    body_timeout_seconds: float = Field(default=15.0, gt=0)
    """A request body not fully received this long after its head is answered 408."""
    max_connections: int = Field(default=512, ge=1)
    """Ingress connections open at once; more wait in the listen backlog (fits ulimit -n 1024)."""
    max_media_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    intercom_max_attachment_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    """Larger files are linked (served by the bridge under /media/) with a note, not uploaded."""
    max_attachments_per_message: int = Field(default=10, ge=1, le=10)
    media_store: Literal["journal", "directory"] = "journal"
    """Where linked oversize files are kept: in the journal's database (every node serves every
    link), or under ``media_dir`` (with several nodes, only if it is storage they share)."""
    media_dir: str = "./threadline-media"
    """The ``directory`` store's files; the ``journal`` store still serves what is left here."""
    media_retention_seconds: float = Field(default=30 * 86400.0, gt=0)
    """Linked oversize files are deleted this long after they were last stored."""
    media_max_bytes: int = Field(default=10 * 1024**3, ge=0)
    """Total size of the linked files; above it the oldest are evicted first (0: no cap)."""
    media_download_timeout_seconds: float = Field(default=30.0, gt=0)
    """One attachment's whole download (lookup, connect, headers, body, retries); after it the
    message goes on with a placeholder for the file."""
    mailbox_capacity: int = Field(default=64, ge=1)
    actor_idle_seconds: float = Field(default=300.0, gt=0)
    max_live_actors: int = Field(default=5000, ge=1)
    """Thread actors alive at once; threads beyond wait in the journal (idle ones make room)."""
    retry_max_attempts: int = Field(default=10, ge=1)
    retry_base_seconds: float = Field(default=0.5, gt=0)
    retry_cap_seconds: float = Field(default=60.0, gt=0)
    conversation_gone_retries: int = Field(default=2, ge=0)
    """Retries of a 404 on a conversation before the bridge opens a new one."""
    intercom_search_settle_seconds: float = Field(default=120.0, ge=0)
    """How long a contact or conversation whose creation is in doubt (a crash, a timeout or a
    5xx during the call) is looked for in Intercom's lagging search before it is created
    again."""
    restart_max: int = Field(default=3, ge=0)
    restart_period_seconds: float = Field(default=30.0, gt=0)
    parked_resume_seconds: float = Field(default=30.0, gt=0)
    shutdown_drain_seconds: float = Field(default=20.0, ge=0)
    journal_retention_seconds: float = Field(default=8 * 86400.0, gt=0)
    """Done entries (and their dedupe ids) are kept this long: providers redeliver for days."""
    dead_letter_retention_seconds: float = Field(default=30 * 86400.0, gt=0)
    """Dead letters (with their payloads and last errors) are deleted this long after they died."""
    partitions: int = Field(default=64, ge=1)
    node_id: str | None = Field(default=None, min_length=1, max_length=200)
    """This process's name in cluster mode (default: host name and process id)."""
    lease_seconds: float = Field(default=15.0, gt=0)
    """Cluster mode: a dead node's partitions move to the others after this long."""
    rebalance_step: int = Field(default=8, ge=1)
    """Cluster mode: partitions a node hands over per lease tick when nodes join."""
    takeover_poll_seconds: float = Field(default=0.25, ge=0)
    """Cluster mode: how often a node looks for nodes whose lease session ended (a dead node:
    its partitions are taken at once, before its leases expire); 0 waits for expiry."""
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

    def secret_problems(self) -> list[str]:
        """Why the secrets that are set cannot be used, one line each; empty when they can.

        Each line names the setting and never contains its value.
        """
        problems: list[str] = []
        for name in _SECRETS:
            secret: SecretStr | None = getattr(self, name)
            if secret is None:
                continue  # absent: the channel (or route) is disabled
            variable = f"THREADLINE_{name.upper()}"
            value = secret.get_secret_value()
            problem = secret_problem(value) or format_problem(name, value)
            if problem is None:
                continue
            if not value.strip():
                problem += ", or remove the variable to disable what it enables"
            problems.append(f"{variable} {problem}")
        if self.viber_auth_token is not None and not self.viber_bot_name:
            problems.append(
                "THREADLINE_VIBER_BOT_NAME is not set: Viber needs a sender name (1-28 "
                "characters) with THREADLINE_VIBER_AUTH_TOKEN"
            )
        sid = self.twilio_account_sid
        if sid is not None and (not sid.strip() or is_placeholder(sid)):
            problems.append(
                "THREADLINE_TWILIO_ACCOUNT_SID is empty or a placeholder: set the real value, "
                "or remove the variable to disable Twilio"
            )
        try:
            password = urlsplit(self.database_url).password
        except ValueError:
            password = None
        if password and is_placeholder(password):
            problems.append("THREADLINE_DATABASE_URL's password is a placeholder: set the real one")
        return problems + self.account_problems()

    # --- the accounts file ----------------------------------------------------------------------

    @cached_property
    def accounts(self) -> AccountsFile:
        """The accounts file, read once (empty without ``THREADLINE_ACCOUNTS_FILE``).

        Raises:
            AccountsFileError: the file cannot be used (:meth:`account_problems` says why).
        """
        if self.accounts_file is None:
            return AccountsFile(path="")
        return load_accounts(self.accounts_file, secret_problem=secret_problem)

    def account_problems(self) -> list[str]:
        """Why the accounts file cannot be used, one line each (file, account, field); and a
        channel kind configured both there and by its environment variables."""
        if self.accounts_file is None:
            return []
        try:
            accounts = self.accounts
        except AccountsFileError as exc:
            return list(exc.problems)
        problems = []
        for channel, fields in CHANNEL_FIELDS.items():
            names = [f"{channel.value}_{name}" for name in fields.credentials]
            set_here = [f"THREADLINE_{n.upper()}" for n in names if getattr(self, n) is not None]
            if accounts.of(channel) and set_here:
                problems.append(
                    f"THREADLINE_ACCOUNTS_FILE {self.accounts_file} lists {channel.value} "
                    f"accounts and {', '.join(set_here)} is set too: configure "
                    f"{channel.value} in one place (the file, or the variables for one account)"
                )
        return problems

    def channel_accounts(self, channel: Channel) -> tuple[Any, ...]:
        """Every credential set of ``channel`` as its settings view: the accounts file's
        (each with its id and numbers), or the environment variables' one account."""
        entries = self.accounts.of(channel)
        if not entries:
            return (self.channel(channel),)
        base = self.channel(channel)
        return tuple(account_view(base, entry) for entry in entries)

    # --- per-channel views: what each channel's registry entry is given ---------------------
    # (the properties ``whatsapp``, ``twilio``, …: ChannelViews)

    def channel(self, channel: Channel) -> Any:  # noqa: ANN401 - the view its ChannelSpec takes
        """The settings view of ``channel`` (the property named after it), as its registry
        entry (``ChannelSpec``) takes it."""
        return getattr(self, channel.value)

    def channel_views(self) -> dict[Channel, tuple[Any, ...]]:
        """Every channel's settings views (one per credential set), for what needs the
        channels' settings and nothing else (the gateway)."""
        return {channel: self.channel_accounts(channel) for channel in Channel}

    def account_profile(self, channel: Channel, account: str) -> AccountProfile:
        """How the threads of business ``account`` on ``channel`` look in Intercom: the
        accounts file's fields of the account that owns it, each falling back to the global
        setting (``THREADLINE_INTERCOM_DEFAULT_ADMIN_ID``,
        ``THREADLINE_CONVERSATION_BUFFER_SECONDS``, ``THREADLINE_REPLY_FORMAT``,
        ``THREADLINE_INTERCOM_TEAM_ID``, ``THREADLINE_INTERCOM_ASSIGNEE_ID``,
        ``THREADLINE_CONVERSATION_TAGS``)."""
        entry = self.accounts.entry(channel, account)
        profile = AccountProfile(
            admin_id=self.intercom_default_admin_id,
            buffer_seconds=self.conversation_buffer_seconds,
            reply_format=self.reply_format,
            team_id=self.intercom_team_id,
            assignee_id=self.intercom_assignee_id,
            tags=self.tags_for(channel),
        )
        return profile if entry is None else with_account(profile, entry, channel)

    def tags_for(self, channel: Channel) -> tuple[str, ...]:
        """``THREADLINE_CONVERSATION_TAGS`` for ``channel``: ``{channel}`` expanded, blanks
        and repeats dropped, in order."""
        return channel_tags(self.conversation_tags.split(","), channel)

    @property
    def sqlite_path(self) -> str | None:
        """The SQLite file path, or None for PostgreSQL."""
        if self.database_url.startswith("sqlite:///"):
            return self.database_url.removeprefix("sqlite:///")
        return None
