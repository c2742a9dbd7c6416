"""The versioned HTTP API: every domain router under `/api/v1`."""

from fastapi import APIRouter

{% if cookiecutter.auth == "jwt" -%}
from app.auth.routes import router as auth_router
{% endif -%}
from app.posts.routes import router as posts_router
from app.users.routes import router as users_router

api_router = APIRouter(prefix="/api/v1")
{%- if cookiecutter.auth == "jwt" %}
api_router.include_router(auth_router)
{%- endif %}
api_router.include_router(users_router)
api_router.include_router(posts_router)
