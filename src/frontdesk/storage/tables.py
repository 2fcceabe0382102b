"""Every table, defined once. Alembic migrations are checked against this metadata."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

# INTEGER PRIMARY KEY on SQLite (the rowid), BIGINT identity on PostgreSQL.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)


def _id() -> sa.Column[int]:
    return sa.Column("id", BigId, sa.Identity(), primary_key=True)


def _partial(*columns: str, where: str, unique: bool = False) -> sa.Index:
    """An index of the rows `where` holds, on both engines."""
    condition = sa.text(where)
    return sa.Index(
        None, *columns, unique=unique, sqlite_where=condition, postgresql_where=condition
    )


def _ref(
    name: str, target: str, *, nullable: bool = False, cascade: bool = False
) -> sa.Column[int]:
    return sa.Column(
        name,
        BigId,
        sa.ForeignKey(target, ondelete="CASCADE" if cascade else None),
        nullable=nullable,
    )


users = sa.Table(
    "users",
    metadata,
    _id(),
    sa.Column("email", sa.String(254), nullable=False, unique=True),
    sa.Column("first_name", sa.String(100), nullable=False),
    sa.Column("last_name", sa.String(100), nullable=False),
    sa.Column("work_phone", sa.String(50)),
    # work_phone reduced to its digits, for matching a PBX internal_number
    sa.Column("phone_digits", sa.String(50), index=True),
    sa.Column("password_hash", sa.String(200)),
    sa.Column("security_key_hash", sa.String(64), nullable=False),
    # bumped with every new security key: tokens of older generations are revoked
    sa.Column("key_generation", sa.Integer(), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

forms = sa.Table(
    "forms",
    metadata,
    _id(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

form_fields = sa.Table(
    "form_fields",
    metadata,
    _id(),
    _ref("form_id", "forms.id", cascade=True),
    sa.Column("code", sa.String(100), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("type", sa.String(30), nullable=False),
    # choice options, in order, as a JSON list of strings
    sa.Column("choices", sa.JSON()),
    sa.Column("position", sa.Integer(), nullable=False),
    sa.UniqueConstraint("form_id", "code"),
)

# Who may see a form's tasks (API v4 access rules): a form that lists no members is open to
# every agent; one that does is open to its members and to a task's author and responsible.
form_members = sa.Table(
    "form_members",
    metadata,
    _ref("form_id", "forms.id", cascade=True),
    _ref("user_id", "users.id", cascade=True),
    sa.PrimaryKeyConstraint("form_id", "user_id"),
    sa.Index(None, "user_id"),
)

extensions = sa.Table(
    "extensions",
    metadata,
    _id(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("client_id", sa.String(200), nullable=False, unique=True),
    # kept readable: outbound webhooks are signed with it (HMAC-SHA1)
    sa.Column("secret", sa.String(200), nullable=False),
    # bumped with every new secret: tokens of older generations are revoked
    sa.Column("secret_generation", sa.Integer(), nullable=False),
    sa.Column("base_url", sa.String(2000)),
    sa.Column("created_at", Timestamp, nullable=False),
    # the last GET /pulse probe: when, and "ok" or what went wrong
    sa.Column("pulse_at", Timestamp),
    sa.Column("pulse_result", sa.String(300)),
)

extension_accounts = sa.Table(
    "extension_accounts",
    metadata,
    _id(),
    _ref("extension_id", "extensions.id", cascade=True),
    sa.Column("account_id", sa.String(300), nullable=False),
    sa.Column("name", sa.String(300), nullable=False),
    _ref("form_id", "forms.id"),
    sa.Column("enabled", sa.Boolean(), nullable=False),
    sa.Column("routing", sa.String(20), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.UniqueConstraint("extension_id", "account_id"),
    # API v4 telephony names an account by account_id alone, across extensions
    sa.Index(None, "account_id"),
)

access_tokens = sa.Table(
    "access_tokens",
    metadata,
    _id(),
    # SHA-256 of the token: a leaked database does not leak usable tokens
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    _ref("extension_id", "extensions.id", nullable=True, cascade=True),
    _ref("user_id", "users.id", nullable=True, cascade=True),
    sa.Column("generation", sa.Integer(), nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False, index=True),
    sa.Column("created_at", Timestamp, nullable=False),
)

tasks = sa.Table(
    "tasks",
    metadata,
    _id(),
    _ref("form_id", "forms.id", nullable=True),
    _ref("account_ref", "extension_accounts.id", nullable=True),
    sa.Column("subject", sa.String(1000)),
    _ref("responsible_id", "users.id", nullable=True),
    _ref("author_id", "users.id", nullable=True),
    sa.Column("closed_at", Timestamp),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

task_values = sa.Table(
    "task_values",
    metadata,
    _ref("task_id", "tasks.id", cascade=True),
    _ref("field_id", "form_fields.id", cascade=True),
    sa.Column("value", sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint("task_id", "field_id"),
)

channels = sa.Table(
    "channels",
    metadata,
    _id(),
    _ref("task_id", "tasks.id", cascade=True),
    _ref("account_ref", "extension_accounts.id", nullable=True, cascade=True),
    #: chat | call
    sa.Column("kind", sa.String(20), nullable=False),
    # the conversation in the external system: channel_id, external_id or caller number
    sa.Column("key", sa.String(300), nullable=False),
    sa.Column("message_type", sa.String(100)),
    sa.Column("sender_name", sa.String(100)),
    sa.Column("created_at", Timestamp, nullable=False),
    # a Planfix chat (kind "chat", no extension account): its integration and contact.
    # Added by migration 0006 without ON DELETE: SQLite adds a column's foreign key only
    # inline, and does not report an inline ON DELETE back (the migration check would fail)
    _ref("planfix_ref", "planfix_integrations.id", nullable=True),
    _ref("contact_ref", "planfix_contacts.id", nullable=True),
    #: a conversation's channels (a Planfix chat's, a Pyrus channel's), numbered from 1: two
    #: first messages of one conversation claim the same number, and a unique index lets one
    #: of them have it (core.channels, core.planfix_chat)
    sa.Column("chat_generation", sa.Integer()),
    # Partial: a Pyrus channel has no Planfix integration and a Planfix chat no extension
    # account, and an index entry for NULL is a write that no lookup reads (migration 0010)
    _partial(
        "account_ref",
        "kind",
        "key",
        "chat_generation",
        where="account_ref IS NOT NULL",
        unique=True,
    ),
    _partial("planfix_ref", "key", "chat_generation", where="planfix_ref IS NOT NULL", unique=True),
    # the chats of a task, which every answer to the customer looks up (migration 0011)
    sa.Index(None, "task_id"),
)

# A new comment sets its task's updated_at when newer: trigger comments_touch_task (migrations
# 0002, 0009).
comments = sa.Table(
    "comments",
    metadata,
    _id(),
    _ref("task_id", "tasks.id", cascade=True),
    _ref("channel_id", "channels.id", nullable=True),
    #: in (from the customer or an extension) | out (to the customer) | internal
    sa.Column("direction", sa.String(10), nullable=False),
    _ref("author_id", "users.id", nullable=True),
    sa.Column("sender_name", sa.String(300)),
    sa.Column("text", sa.Text(), nullable=False),
    # sanitised to the documented tags; `text` holds its plain-text version
    sa.Column("html", sa.Text()),
    sa.Column("message_type", sa.String(100)),
    sa.Column("send_to_external_channel", sa.Boolean(), nullable=False),
    #: what the comment did to its task (API v4): finished | reopened
    sa.Column("action", sa.String(20)),
    #: a snapshot of what else it changed, as API v4 shows it: {"reassigned_to": user id,
    #: "field_updates": [{"id", "code", "name", "type", "value"}...]} (no foreign key: history
    #: stays as it was written)
    sa.Column("changes", sa.JSON()),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Index(None, "task_id", "id"),
)

files = sa.Table(
    "files",
    metadata,
    _id(),
    sa.Column("guid", sa.String(36), nullable=False, unique=True),
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("size", sa.BigInteger(), nullable=False),
    sa.Column("md5", sa.String(32), nullable=False),
    sa.Column("content_type", sa.String(200), nullable=False),
    _ref("extension_id", "extensions.id", nullable=True, cascade=True),
    _ref("user_id", "users.id", nullable=True),
    sa.Column("created_at", Timestamp, nullable=False, index=True),
)

attachments = sa.Table(
    "attachments",
    metadata,
    _ref("comment_id", "comments.id", cascade=True),
    # no cascade: deleting a file that a comment still shows must fail, not empty the comment
    _ref("file_id", "files.id"),
    sa.Column("position", sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint("comment_id", "file_id"),
    sa.Index(None, "file_id"),
)

calls = sa.Table(
    "calls",
    metadata,
    _id(),
    _ref("account_ref", "extension_accounts.id", cascade=True),
    _ref("task_id", "tasks.id", cascade=True),
    sa.Column("external_id", sa.String(300)),
    sa.Column("from_number", sa.String(100), nullable=False),
    sa.Column("to_number", sa.String(100), nullable=False),
    sa.Column("internal_number", sa.String(100)),
    _ref("record_file_id", "files.id", nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.UniqueConstraint("account_ref", "external_id"),
    sa.Index(None, "account_ref", "from_number", "to_number"),
    sa.Index(None, "task_id"),
    # the file sweep and v4 file visibility look calls up by their recording (partial: most
    # calls have none)
    _partial("record_file_id", where="record_file_id IS NOT NULL"),
)


# The transactional outbox: a webhook is a row written in the same transaction as the change
# that causes it; the delivery worker sends it (docs/decisions.md, "Outbound delivery").
deliveries = sa.Table(
    "deliveries",
    metadata,
    _id(),
    #: sent with every attempt, so a receiver can drop repeats (at-least-once delivery)
    sa.Column("delivery_id", sa.String(36), nullable=False, unique=True),
    #: sendmessage | toggle | planfix_message ...
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("content_type", sa.String(100), nullable=False),
    # the exact bytes to send, as text (JSON or form-urlencoded, both ASCII-safe or UTF-8)
    sa.Column("body", sa.Text(), nullable=False),
    #: signs the body with this extension's secret at send time (None: not signed)
    _ref("extension_id", "extensions.id", nullable=True, cascade=True),
    #: deliveries with one key go out one at a time, in id order (one channel, one account)
    sa.Column("ordering_key", sa.String(200), nullable=False),
    #: pending | sending | sent | dead
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("max_attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", Timestamp, nullable=False),
    #: when a claim runs out (next_attempt_at is set to it too): a sending row whose lease
    #: ran out belongs to a worker that died, and is sent again
    sa.Column("lease_until", Timestamp),
    sa.Column("last_error", sa.String(500)),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("finished_at", Timestamp),
)
# Partial indexes of the open rows (pending, sending): the worker's lookups stay as fast with
# a million sent rows as with none (core/outbox.py spells their WHERE the same way).
_OPEN_DELIVERY = sa.text("status IN ('pending', 'sending')")
sa.Index(
    "ix_deliveries_open_id",
    deliveries.c.id,
    sqlite_where=_OPEN_DELIVERY,
    postgresql_where=_OPEN_DELIVERY,
)
sa.Index(
    "ix_deliveries_open_ordering_key_id",
    deliveries.c.ordering_key,
    deliveries.c.id,
    sqlite_where=_OPEN_DELIVERY,
    postgresql_where=_OPEN_DELIVERY,
)

delivery_attempts = sa.Table(
    "delivery_attempts",
    metadata,
    _id(),
    _ref("delivery_ref", "deliveries.id", cascade=True),
    sa.Column("attempt", sa.Integer(), nullable=False),
    sa.Column("started_at", Timestamp, nullable=False),
    sa.Column("latency_ms", sa.Integer(), nullable=False),
    #: the HTTP status, None when no answer came (timeout, refused, guard)
    sa.Column("status_code", sa.Integer()),
    sa.Column("error", sa.String(500)),
    #: the first bytes of the answer, for `deliveries show`
    sa.Column("response_excerpt", sa.Text()),
    sa.Index(None, "delivery_ref", "attempt"),
)


# Planfix chat integrations: a chat system (providerId) posting to /webchat/api.
planfix_integrations = sa.Table(
    "planfix_integrations",
    metadata,
    _id(),
    sa.Column("provider_id", sa.String(200), nullable=False, unique=True),
    # SHA-256 of the planfix_token it sends us: a leaked database leaks no usable key
    sa.Column("token_hash", sa.String(64), nullable=False),
    #: where agents' answers go (cmd=newMessage); None: answers stay in Frontdesk
    sa.Column("provider_url", sa.String(2000)),
    # the provider's own key, kept as given: every answer must carry it (`token`)
    sa.Column("provider_token", sa.String(500), nullable=False),
    _ref("form_id", "forms.id"),
    #: the agent an echo message is recorded as when its userEmail names nobody
    _ref("default_agent_id", "users.id", nullable=True),
    sa.Column("routing", sa.String(20), nullable=False),
    #: the address the provider last reached us at: the base of the file links we send it
    sa.Column("public_base_url", sa.String(2000)),
    sa.Column("created_at", Timestamp, nullable=False),
)

# A chat system's contacts (contactId and the details it sends), one set per provider.
planfix_contacts = sa.Table(
    "planfix_contacts",
    metadata,
    _id(),
    _ref("planfix_ref", "planfix_integrations.id", cascade=True),
    sa.Column("external_id", sa.String(300), nullable=False),
    sa.Column("first_name", sa.String(200)),
    sa.Column("last_name", sa.String(200)),
    sa.Column("avatar_url", sa.String(2000)),
    sa.Column("email", sa.String(300)),
    sa.Column("phone", sa.String(100)),
    sa.Column("data", sa.Text()),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.UniqueConstraint("planfix_ref", "external_id"),
)

# Files a message names by URL (Planfix attachments), fetched into the file store in the
# background and attached to the comment then; claimed like the outbox (core.outbox).
attachment_fetches = sa.Table(
    "attachment_fetches",
    metadata,
    _id(),
    _ref("comment_id", "comments.id", cascade=True),
    #: the attachment's place among the message's attachments
    sa.Column("position", sa.Integer(), nullable=False),
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("url", sa.String(2000), nullable=False),
    #: pending | fetching | done | failed
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", Timestamp, nullable=False),
    #: a fetching row whose lease ran out belongs to a fetcher that died: it is fetched again
    sa.Column("lease_until", Timestamp),
    _ref("file_id", "files.id", nullable=True),
    sa.Column("last_error", sa.String(500)),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("finished_at", Timestamp),
    sa.Index(None, "status", "next_attempt_at"),
    sa.Index(None, "comment_id"),
)

# Keys the server keeps for itself, shared by every process on the database: `file_links`
# signs the expiring download links sent to chat providers.
server_keys = sa.Table(
    "server_keys",
    metadata,
    sa.Column("name", sa.String(50), primary_key=True),
    sa.Column("value", sa.String(500), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)
