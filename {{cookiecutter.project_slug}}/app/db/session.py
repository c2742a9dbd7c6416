"""Sessions: one per request, committed before the response is sent.

`SessionDep` is declared with `scope="function"`, so the commit below runs when the
endpoint returns and *before* FastAPI sends the response: a commit that fails
becomes an error response, never a 2xx. (With the default scope, code after
`yield` runs after the response has gone out.)
Docs: https://fastapi.tiangolo.com/tutorial/dependencies/dependencies-with-yield/
"""

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from app.db.soft_delete import hide_soft_deleted


class AppSession(Session):
    """This service's ORM session: soft-deleted rows are hidden from its queries."""


event.listen(AppSession, "do_orm_execute", hide_soft_deleted)


def create_session_factory(
    bind: AsyncEngine | AsyncConnection, **options: Any
) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: attributes stay readable after commit without
    # lazy I/O (which async code cannot do implicitly: MissingGreenlet).
    # autoflush=False: flushes happen where the code says so, not mid-query.
    return async_sessionmaker(
        bind, sync_session_class=AppSession, expire_on_commit=False, autoflush=False, **options
    )


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Commit if the endpoint succeeded, roll back if it raised, always close."""
    factory: async_sessionmaker[AsyncSession] = request.app.state.session_factory
    async with factory() as session, session.begin():
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
