{%- set db = cookiecutter.database -%}
{%- macro outbox_tables() %}
    op.create_table(
        "outbox",
        sa.Column("id", UUID_KEY, nullable=False),
        sa.Column("task", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", UTC_TIMESTAMP, server_default=SERVER_NOW, nullable=False),
        sa.Column("claimed_until", UTC_TIMESTAMP, nullable=True),
        sa.Column("sent_at", UTC_TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
{%- if db == "mysql" %}
    op.create_index("ix_outbox_sent_at_id", "outbox", ["sent_at", "id"])
{%- else %}
    op.create_index(
        "ix_outbox_pending_id", "outbox", ["id"], {{ db }}_where=sa.text("sent_at IS NULL")
    )
    op.create_index(
        "ix_outbox_sent_at", "outbox", ["sent_at"], {{ db }}_where=sa.text("sent_at IS NOT NULL")
    )
{%- endif %}
    op.create_table(
        "processed_tasks",
        sa.Column("outbox_id", UUID_KEY, nullable=False),
        sa.Column("processed_at", UTC_TIMESTAMP, server_default=SERVER_NOW, nullable=False),
        sa.PrimaryKeyConstraint("outbox_id", name=op.f("pk_processed_tasks")),
    )
    op.create_index(op.f("ix_processed_tasks_processed_at"), "processed_tasks", ["processed_at"])
{%- endmacro -%}
{%- set examples = cookiecutter.include_example_models == "yes" -%}
{%- set auth = cookiecutter.auth == "jwt" -%}
{%- set users = examples or auth -%}
{%- set tasks = cookiecutter.task_queue == "taskiq" -%}
"""Initial schema{% if users or tasks %}: every table of the models in app/models.py{% endif %}.

Written by hand and reviewed, with a fixed revision id; the tests prove it matches
the models on this database (`tests/test_migrations.py`).

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence
{% if users or tasks %}
import sqlalchemy as sa
from alembic import op
{%- if db == "mysql" %}
from sqlalchemy.dialects import mysql
{%- endif %}

# What app.db.types stores. Migrations name plain column types and SQL, and never
# import the app, whose code may change after the migration was written.
{%- if db == "mysql" %}
UUID_KEY = mysql.BINARY(length=16)
UTC_TIMESTAMP = mysql.DATETIME(fsp=6)
SERVER_NOW = sa.text("(UTC_TIMESTAMP(6))")
{%- elif db == "postgresql" %}
UUID_KEY = sa.Uuid()
UTC_TIMESTAMP = sa.DateTime(timezone=True)
SERVER_NOW = sa.text("now()")
{%- else %}
UUID_KEY = sa.Uuid()
UTC_TIMESTAMP = sa.DateTime()
SERVER_NOW = sa.text("(strftime('%Y-%m-%d %H:%M:%f000', 'now'))")
{%- endif %}
{% endif %}
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
{% if users %}

def _timestamps_and_soft_delete() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", UTC_TIMESTAMP, server_default=SERVER_NOW, nullable=False),
        sa.Column("updated_at", UTC_TIMESTAMP, server_default=SERVER_NOW, nullable=False),
        sa.Column("is_deleted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("deleted_at", UTC_TIMESTAMP, nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "roles",
        sa.Column("id", UUID_KEY, nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roles")),
        sa.UniqueConstraint("name", name=op.f("uq_roles_name")),
    )
    op.create_table(
        "users",
        sa.Column("id", UUID_KEY, nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
{%- if db == "mysql" %}
        sa.Column(
            "live_email",
            sa.String(length=320),
            sa.Computed("CASE WHEN is_deleted THEN NULL ELSE email END", persisted=False),
            nullable=True,
        ),
{%- endif %}
        sa.Column("full_name", sa.String(length=200), nullable=False),
{%- if cookiecutter.auth == "jwt" %}
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("failed_logins", sa.Integer(), server_default="0", nullable=False),
        sa.Column("locked_until", UTC_TIMESTAMP, nullable=True),
        sa.Column("token_generation", sa.Integer(), server_default="0", nullable=False),
{%- endif %}
{%- if examples %}
        sa.Column("post_count", sa.Integer(), server_default="0", nullable=False),
{%- endif %}
        sa.Column("version", sa.Integer(), nullable=False),
        *_timestamps_and_soft_delete(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    )
    op.create_index("ix_users_created_at_id", "users", ["created_at", "id"])
{%- if db == "mysql" %}
    op.create_index("uq_users_live_email", "users", ["live_email"], unique=True)
{%- elif db == "postgresql" %}
    op.create_index(
        "uq_users_live_email",
        "users",
        ["email"],
        unique=True,
        postgresql_where=sa.text("NOT is_deleted"),
        postgresql_ops={"email": "text_pattern_ops"},
    )
    # A finer histogram (ANALYZE samples 300 rows per unit of target) for the email
    # prefix filter: on the default target the planner can take a prefix that a few
    # users have for one that many have, and walk the date index for a page of them.
    op.execute("ALTER TABLE users ALTER COLUMN email SET STATISTICS 1000")
{%- else %}
    op.create_index(
        "uq_users_live_email",
        "users",
        ["email"],
        unique=True,
        sqlite_where=sa.text("is_deleted = 0"),
    )
{%- endif %}
{%- if examples %}
    op.create_index("ix_users_post_count_id", "users", ["post_count", "id"])
{%- endif %}
{%- if db == "mysql" %}
    op.create_index("ix_users_deleted_at_id", "users", ["deleted_at", "id"])
{%- else %}
    op.create_index(
        "ix_users_deleted_at_id",
        "users",
        ["deleted_at", "id"],
        {{ db }}_where=sa.text("{{ 'is_deleted' if db == 'postgresql' else 'is_deleted = 1' }}"),
    )
{%- endif %}
{%- if examples %}
    op.create_table(
        "posts",
        sa.Column("id", UUID_KEY, nullable=False),
        sa.Column("author_id", UUID_KEY, nullable=False),
{%- if db == "sqlite" %}
        sa.Column("title", sa.String(length=200, collation="NOCASE"), nullable=False),
{%- else %}
        sa.Column("title", sa.String(length=200), nullable=False),
{%- endif %}
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("view_count", sa.Integer(), server_default="0", nullable=False),
        *_timestamps_and_soft_delete(),
        sa.CheckConstraint("view_count >= 0", name=op.f("ck_posts_view_count_non_negative")),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_posts_author_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_posts")),
    )
    op.create_index("ix_posts_author_id_created_at_id", "posts", ["author_id", "created_at", "id"])
    op.create_index("ix_posts_created_at_id", "posts", ["created_at", "id"])
    op.create_index("ix_posts_view_count", "posts", ["view_count"])
{%- if db == "postgresql" %}
    op.create_index(
        "ix_posts_title_prefix",
        "posts",
        [sa.literal_column("lower(title)")],
        postgresql_ops={"lower(title)": "text_pattern_ops"},
    )
    # A finer histogram of the title prefix too: on the default target, a page of the
    # posts of a prefix that a few posts have read every post after 1 ANALYZE in 40, at
    # 100,000 posts (scripts/explain_queries.py).
    op.execute("ALTER INDEX ix_posts_title_prefix ALTER COLUMN 1 SET STATISTICS 1000")
{%- else %}
    op.create_index("ix_posts_title", "posts", ["title"])
{%- endif %}
{%- endif %}
    op.create_table(
        "user_roles",
        sa.Column("user_id", UUID_KEY, nullable=False),
        sa.Column("role_id", UUID_KEY, nullable=False),
        sa.ForeignKeyConstraint(
            ["role_id"], ["roles.id"], name=op.f("fk_user_roles_role_id_roles"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_roles_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "role_id", name=op.f("pk_user_roles")),
    )
    op.create_index(op.f("ix_user_roles_role_id"), "user_roles", ["role_id"])
{%- if cookiecutter.auth == "jwt" %}
    op.create_table(
        "refresh_tokens",
        sa.Column("id", UUID_KEY, nullable=False),
        sa.Column("family_id", UUID_KEY, nullable=False),
        sa.Column("user_id", UUID_KEY, nullable=False),
        sa.Column("expires_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("used_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("revoked_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("created_at", UTC_TIMESTAMP, server_default=SERVER_NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_refresh_tokens_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_tokens")),
    )
    op.create_index(op.f("ix_refresh_tokens_expires_at"), "refresh_tokens", ["expires_at"])
    op.create_index(op.f("ix_refresh_tokens_family_id"), "refresh_tokens", ["family_id"])
    op.create_index(op.f("ix_refresh_tokens_revoked_at"), "refresh_tokens", ["revoked_at"])
    op.create_index(op.f("ix_refresh_tokens_user_id"), "refresh_tokens", ["user_id"])
    op.create_table(
        "auth_throttle",
        sa.Column("bucket", sa.String(length=80), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "window_start", name=op.f("pk_auth_throttle")),
    )
    op.create_index(op.f("ix_auth_throttle_window_start"), "auth_throttle", ["window_start"])
{%- endif %}
{%- if tasks %}{{ outbox_tables() }}{%- endif %}


def downgrade() -> None:
{%- if db == "mysql" %}
    # Dropping a table drops its indexes and foreign keys with it (an index that
    # backs a foreign key cannot be dropped on its own while the key exists).
{%- else %}
    # Dropping a table drops its indexes and foreign keys with it.
{%- endif %}
{%- if tasks %}
    op.drop_table("processed_tasks")
    op.drop_table("outbox")
{%- endif %}
    for table in ({% if auth %}"auth_throttle", "refresh_tokens", {% endif %}"user_roles", {% if examples %}"posts", {% endif %}"users", "roles"):
        op.drop_table(table)
{%- elif tasks %}

def upgrade() -> None:
{{- outbox_tables() }}


def downgrade() -> None:
    op.drop_table("processed_tasks")
    op.drop_table("outbox")
{%- else %}

def upgrade() -> None:
    """Nothing yet: add models, then `make migration m="..."`."""


def downgrade() -> None:
    """Nothing to undo."""
{%- endif %}
