"""Small helpers that create {% if cookiecutter.include_example_models == "yes" %}example data{% else %}users{% endif %} through the public API."""

from typing import Any
from uuid import uuid4

from httpx import AsyncClient


async def create_user(client: AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"email": f"{uuid4().hex[:12]}@example.com", "full_name": "Ada Lovelace"} | fields
    response = await client.post("/api/v1/users", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data
{%- if cookiecutter.include_example_models == "yes" %}


async def create_post(client: AsyncClient, user_id: str, **fields: Any) -> dict[str, Any]:
    body = {"title": "Notes on the engine", "body": "It weaves algebraic patterns."} | fields
    response = await client.post(f"/api/v1/users/{user_id}/posts", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data
{%- endif %}
