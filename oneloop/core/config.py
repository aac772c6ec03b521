"""One settings object for the whole process, read from the environment (prefix ``ONELOOP_``).

Built once at start-up by the entry point (CLI command, app factory, test fixture) and passed
down; nothing else reads ``os.environ``. Defaults are for a laptop: a SQLite file under ./var/.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SqliteSynchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]


class WebhookSetting(BaseModel):
    """One named group robot (``oneloop.channels.webhooks``): its URL carries the robot's key,
    so the whole entry is a secret and is never logged."""

    kind: Literal["wecom", "dingtalk"]
    url: SecretStr
    secret: SecretStr | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ONELOOP_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///var/oneloop.db",
        description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://user:pw@host/db.",
    )
    sqlite_synchronous: SqliteSynchronous = Field(
        default="FULL",
        description=(
            "PRAGMA synchronous for SQLite. FULL fsyncs the WAL on every commit, so an "
            "acknowledged event survives a power cut; NORMAL does not, and is unsafe for ingest."
        ),
    )
    sqlite_busy_timeout_ms: int = Field(
        default=5000,
        ge=0,
        description="How long a SQLite writer waits for the lock before the request gets a 503.",
    )
    db_pool_size: int = Field(default=10, ge=1, description="PostgreSQL connection pool size.")
    log_format: Literal["auto", "json", "text"] = Field(
        default="auto",
        description="auto: key=value on a terminal, JSON lines otherwise.",
    )
    log_level: str = Field(default="INFO", description="Root log level.")
    host: str = Field(default="127.0.0.1", description="Address `oneloop serve` binds to.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `oneloop serve` binds to.")
    admin_token: SecretStr | None = Field(
        default=None,
        description=(
            "Bootstrap admin bearer token for the admin API until users and API keys exist; "
            "unset means the admin API refuses every call."
        ),
    )
    cookie_secure: bool = Field(
        default=True,
        description=(
            "Mark the console's session cookie Secure (HTTPS only; browsers also send it to "
            "http://localhost). Turn off only behind plain HTTP on another host name."
        ),
    )
    session_hours: float = Field(
        default=12, gt=0, description="A console session ends this many hours after sign-in."
    )
    session_idle_minutes: float = Field(
        default=120, gt=0, description="A console session unused this long ends."
    )
    login_max_failures: int = Field(
        default=5, ge=1, description="Failed sign-ins in a row that lock an email out."
    )
    login_lockout_minutes: float = Field(
        default=15, gt=0, description="How long a locked-out email waits (or an admin unlocks)."
    )
    login_rate_per_minute: int = Field(
        default=20, ge=1, description="Sign-in attempts one address may make per minute."
    )
    idempotency_key_hours: float = Field(
        default=24,
        gt=0,
        description=(
            "How long an Idempotency-Key is remembered: a retry within it gets the first "
            "answer; after it the key is free again and expired keys are purged."
        ),
    )
    max_requests_per_connection: int = Field(
        default=100,
        ge=0,
        description=(
            "Answers on one keep-alive connection before the server closes it (the client "
            "reconnects), so that with several server processes the load moves to the one "
            "with time to spare; 0 keeps connections open for good."
        ),
    )
    api_key_cache_seconds: float = Field(
        default=5,
        ge=0,
        le=300,
        description=(
            "How long a server process remembers what an API key may do, so that a busy "
            "integration does not look its key up on every call. A key revoked, or a user or "
            "role changed, through this process takes effect at once; through another process "
            "within this many seconds. 0 looks every call up."
        ),
    )
    require_if_match: bool = Field(
        default=False,
        description=(
            "Refuse (428) a change to a configuration object sent without If-Match; by "
            "default a change without it proceeds (last writer wins)."
        ),
    )
    run_consumers: bool = Field(
        default=True,
        description="Whether `oneloop serve` also runs the event-log consumers in-process.",
    )
    bus_url: str | None = Field(
        default=None,
        description=(
            "Redis URL of the bus (redis://127.0.0.1:6379/0): the worker relays each topic "
            "into a Redis stream and subscribers read it with consumer groups. Unset: "
            "subscribers read the topics from the database (one process)."
        ),
    )
    bus_stream_maxlen: int = Field(
        default=1_000_000,
        ge=0,
        description=(
            "About how many entries each Redis stream keeps (0: all). A consumer group that "
            "falls further behind than this loses the oldest messages."
        ),
    )
    bus_claim_timeout_ms: int = Field(
        default=60_000,
        ge=0,
        description=(
            "How long a message read but not acknowledged stays with its reader before "
            "another reader of the same group is handed it (a dead worker's messages)."
        ),
    )
    pii_hash_key: SecretStr | None = Field(
        default=None,
        description=(
            "Secret for the keyed hash (HMAC-SHA256) kept of sensitive personal data such as "
            "id-card numbers, which is never stored in clear. Unset: only the masked form is "
            "stored, so equal values from two sources are not recognised as equal."
        ),
    )
    smtp_host: str | None = Field(
        default=None, description="SMTP server for notification email; unset: no email channel."
    )
    smtp_port: int = Field(default=587, ge=1, le=65535, description="SMTP server port.")
    smtp_security: Literal["none", "starttls", "tls"] = Field(
        default="starttls",
        description="starttls: upgrade a plain connection (port 587); tls: implicit TLS (465).",
    )
    smtp_username: str | None = Field(default=None, description="SMTP login; unset: no AUTH.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password.")
    smtp_from: str = Field(
        default="OneLoop <oneloop@localhost>",
        description="From address of notification email, optionally with a display name.",
    )
    smtp_timeout_seconds: float = Field(
        default=10, gt=0, description="How long one SMTP connection or reply may take."
    )
    webhooks: dict[str, WebhookSetting] = Field(
        default_factory=dict,
        description=(
            'Named group robots, JSON: {"sales": {"kind": "wecom", "url": "https://…"}}; '
            'kind wecom or dingtalk, DingTalk\'s signing secret in "secret". A name '
            '"<bu_id>/<name>" is that business unit\'s own and overrides the global one.'
        ),
    )
    webhook_allowed_networks: list[IPv4Network | IPv6Network] = Field(
        default_factory=list,
        description=(
            "Internal networks (CIDR, JSON list) webhooks may be posted to, over http too. "
            "Empty: only public addresses, over https (no loopback, private, link-local)."
        ),
    )
    demo_dir: Path = Field(
        default=Path("var/demo"), description="Where `demo generate` writes and `demo load` reads."
    )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
