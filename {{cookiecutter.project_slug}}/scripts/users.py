"""User administration from the command line, for what no API caller may do first.

    python -m scripts.users grant-admin EMAIL    # give the admin role
    python -m scripts.users revoke-admin EMAIL   # take it away

The first admin can only come from here: through the API, only an admin gives
roles. It reads DATABASE_URL the way the app does and uses the job pool preset
(JOB_DB_*). Exit status: 0 done, 1 no live user with that email or a database error.
"""

import argparse
import asyncio
import sys

from sqlalchemy.exc import SQLAlchemyError

from app.auth.admins import set_admin
from app.db.session import job_database
from app.settings import get_settings


async def run(email: str, *, admin: bool) -> int:
    try:
        async with job_database(get_settings()) as database:
            user_id = await set_admin(database, email, admin=admin)
    except SQLAlchemyError as exc:
        print(f"database error: {exc}", file=sys.stderr)
        return 1
    if user_id is None:
        print("no live user has that email", file=sys.stderr)
        return 1
    print(f"user {user_id} is {'now' if admin else 'no longer'} an admin")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.users", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    commands = parser.add_subparsers(dest="command", required=True)
    for command, what in (("grant-admin", "give"), ("revoke-admin", "take away")):
        sub = commands.add_parser(command, help=f"{what} the admin role")
        sub.add_argument("email", help="the user's email (any letter case)")
    arguments = parser.parse_args(argv)
    return asyncio.run(run(arguments.email, admin=arguments.command == "grant-admin"))


if __name__ == "__main__":
    sys.exit(main())
