{%- set examples = cookiecutter.include_example_models == "yes" -%}
{%- set auth = cookiecutter.auth == "jwt" -%}
{%- set tasks = cookiecutter.task_queue == "taskiq" -%}
"""Every model, imported in one place so Alembic and the tests see the whole schema."""
{% if examples or auth %}
{%- if auth %}
from app.auth.models import RefreshToken, ThrottleWindow
{%- endif %}
from app.db.base import Base
{%- if tasks %}
from app.db.outbox import OutboxMessage, ProcessedTask
{%- endif %}
{%- if examples %}
from app.posts.models import Post
{%- endif %}
from app.users.models import Role, User, user_roles

__all__ = [
    "Base",
{%- if tasks %}
    "OutboxMessage",
{%- endif %}
{%- if examples %}
    "Post",
{%- endif %}
{%- if tasks %}
    "ProcessedTask",
{%- endif %}
{%- if auth %}
    "RefreshToken",
{%- endif %}
    "Role",
{%- if auth %}
    "ThrottleWindow",
{%- endif %}
    "User",
    "user_roles",
]
{%- else %}
from app.db.base import Base
{%- if tasks %}
from app.db.outbox import OutboxMessage, ProcessedTask

__all__ = ["Base", "OutboxMessage", "ProcessedTask"]
{%- else %}

__all__ = ["Base"]
{%- endif %}
{%- endif %}
