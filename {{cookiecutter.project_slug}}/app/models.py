"""Every model, imported in one place so Alembic and the tests see the whole schema."""
{% if cookiecutter.include_example_models == "yes" %}
{%- if cookiecutter.auth == "jwt" %}
from app.auth.models import RefreshToken
{%- endif %}
from app.db.base import Base
from app.posts.models import Post
from app.users.models import Role, User, user_roles

__all__ = ["Base", "Post", {% if cookiecutter.auth == "jwt" %}"RefreshToken", {% endif %}"Role", "User", "user_roles"]
{%- else %}
from app.db.base import Base

__all__ = ["Base"]
{%- endif %}
