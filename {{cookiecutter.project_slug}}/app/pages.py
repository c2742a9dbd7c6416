"""The pagination contract of every list endpoint, over HTTP.

The body stays a JSON list. When more rows follow, the response carries an
RFC 8288 header `Link: </api/v1/...?cursor=...&limit=20>; rel="next"`: the same URL
with the same filters and an opaque `cursor`; the last page has none. `offset`
serves the first pages only (at most MAX_OFFSET rows skipped) and cannot be
combined with a cursor. A malformed or altered cursor is a 422.
Docs: https://www.rfc-editor.org/rfc/rfc8288
"""

from collections.abc import Mapping
from typing import Annotated

from fastapi import Depends, Query, Request, Response
from pydantic import BaseModel

from app.db.pagination import CursorError, Page, Position, decode_cursor, encode_cursor
from app.errors import InvalidInputError

MAX_LIMIT = 100
MAX_OFFSET = 1000


class PageQuery(BaseModel):
    limit: int
    offset: int
    cursor: str | None


def _page_query(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="First pages only.")] = 0,
    cursor: Annotated[
        str | None, Query(max_length=200, description='From the `Link: <...>; rel="next"` header.')
    ] = None,
) -> PageQuery:
    return PageQuery(limit=limit, offset=offset, cursor=cursor)


PageParams = Annotated[PageQuery, Depends(_page_query)]


def _secret(request: Request) -> str:
    secret: str = request.app.state.settings.secret_key
    return secret


def start_of_page(
    request: Request, params: PageQuery, filters: Mapping[str, object]
) -> Position | None:
    """Where the requested page starts, from its cursor (None: the first pages)."""
    if params.cursor is None:
        return None
    if params.offset:
        raise InvalidInputError("offset cannot be combined with a cursor")
    try:
        return decode_cursor(
            params.cursor, name=request.url.path, filters=filters, secret=_secret(request)
        )
    except CursorError as exc:
        raise InvalidInputError(f"invalid cursor: {exc}") from exc


def link_next_page(
    request: Request, response: Response, page: Page[object], filters: Mapping[str, object]
) -> None:
    if page.next is None:
        return
    cursor = encode_cursor(
        page.next, name=request.url.path, filters=filters, secret=_secret(request)
    )
    url = request.url.remove_query_params("offset").include_query_params(cursor=cursor)
    response.headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'
