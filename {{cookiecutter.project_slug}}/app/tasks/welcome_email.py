"""The example task: a welcome email for a new user, enqueued by `POST /api/v1/users`
and `POST /api/v1/auth/register` in the transaction that creates the user.

An email is an effect outside the database, so it cannot commit with the record
that it was sent (app.tasks.once): the task skips a user it has already welcomed,
sends with the outbox id as the email's Message-ID (the receiving side can drop a
second copy), and records the id afterwards. Only a worker that dies between the
send and the record sends twice, with the same Message-ID.
"""

import logging
import uuid
from email.message import EmailMessage

from sqlalchemy import select
from taskiq import Context, TaskiqDepends

from app.db.session import Database
from app.settings import Settings
from app.tasks import mail
from app.tasks.once import is_processed, outbox_id, record_processed
from app.users.models import User

logger = logging.getLogger(__name__)


async def send_welcome_email(user_id: uuid.UUID, context: Context = TaskiqDepends()) -> None:
    database: Database = context.state.database
    settings: Settings = context.state.settings
    task_id = outbox_id(context)
    async with database.transaction() as connection:
        if await is_processed(connection, task_id):
            logger.info("welcome email %s: already sent", task_id)
            return
        user = (
            await connection.execute(
                select(User.email, User.full_name).where(User.id == user_id, ~User.is_deleted)
            )
        ).one_or_none()
    if user is None:
        logger.info("welcome email %s: user %s is gone, nothing to send", task_id, user_id)
    else:
        message = EmailMessage()
        message["From"] = settings.mail_from
        message["To"] = user.email
        message["Subject"] = "Welcome"
        message["Message-ID"] = f"<{task_id}@{settings.mail_from.rpartition('@')[2]}>"
        message.set_content(f"Hello {user.full_name},\n\nwelcome aboard.\n")
        await mail.send(
            mail.SmtpServer.from_url(settings.smtp_url), message, settings.smtp_timeout_seconds
        )
        logger.info("welcome email %s: sent to user %s", task_id, user_id)
    async with database.transaction() as connection:
        await record_processed(connection, task_id)
