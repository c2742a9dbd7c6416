"""Every model, imported in one place so Alembic and the tests see the whole schema."""
{% if cookiecutter.include_example_models == "yes" %}
{%- if cookiecutter.auth == "jwt" %}
from app.auth.models import RefreshToken
{%- endif %}
from app.db.base import Base
{%- if cookiecutter.task_queue == "taskiq" %}
from app.db.outbox import OutboxMessage, ProcessedTask
{%- endif %}
from app.posts.models import Post
from app.users.models import Role, User, user_roles
{% if cookiecutter.task_queue == "taskiq" %}
__all__ = [
    "Base",
    "OutboxMessage",
    "Post",
    "ProcessedTask",
{%- if cookiecutter.auth == "jwt" %}
    "RefreshToken",
{%- endif %}
    "Role",
    "User",
    "user_roles",
]
{%- else %}
__all__ = ["Base", "Post", {% if cookiecutter.auth == "jwt" %}"RefreshToken", {% endif %}"Role", "User", "user_roles"]
{%- endif %}
{%- else %}
from app.db.base import Base
{%- if cookiecutter.task_queue == "taskiq" %}
from app.db.outbox import OutboxMessage, ProcessedTask

__all__ = ["Base", "OutboxMessage", "ProcessedTask"]
{%- else %}

__all__ = ["Base"]
{%- endif %}
{%- endif %}
