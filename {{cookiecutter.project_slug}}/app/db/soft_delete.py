"""Hide soft-deleted rows from every ORM query, relationship loads included.

`app.db.session` installs it on the app's session class. Pass
`execution_options(include_deleted=True)` to see them (admin tools, audits). Core
statements on a connection (the read paths) are not ORM queries: they state
`is_deleted IS false` themselves.
Docs: https://docs.sqlalchemy.org/en/20/orm/session_events.html#adding-global-where-on-criteria
"""

from sqlalchemy.orm import ORMExecuteState, with_loader_criteria

from app.db.mixins import SoftDeleteMixin


def hide_soft_deleted(state: ORMExecuteState) -> None:
    """A `do_orm_execute` hook: add `is_deleted IS false` for every soft-delete model."""
    if (
        state.is_select
        and not state.is_column_load
        and not state.is_relationship_load
        and not state.execution_options.get("include_deleted", False)
    ):
        state.statement = state.statement.options(
            with_loader_criteria(
                SoftDeleteMixin,
                lambda cls: cls.is_deleted.is_(False),
                include_aliases=True,
            )
        )
