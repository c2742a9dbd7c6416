"""The versioned HTTP API: every domain router under `/api/v1`."""

from fastapi import APIRouter

{% if cookiecutter.auth == "jwt" -%}
from app.auth.routes import router as auth_router
{% endif -%}
{% if cookiecutter.include_example_models == "yes" -%}
from app.posts.routes import router as posts_router
{% endif -%}
from app.users.routes import router as users_router

api_router = APIRouter(prefix="/api/v1")
{%- if cookiecutter.auth == "jwt" %}
api_router.include_router(auth_router)
{%- endif %}
api_router.include_router(users_router)
{%- if cookiecutter.include_example_models == "yes" %}
api_router.include_router(posts_router)
{%- endif %}
