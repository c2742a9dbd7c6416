"""Primary keys: UUIDv7, time-ordered, so new rows append to the end of the index
instead of landing at random pages of it (as random UUIDv4 keys do).
{%- if cookiecutter.python_version != "3.14" %}

Python 3.14 has `uuid.uuid7()`; before it, uuid-utils provides the same (stdlib
`uuid.UUID` objects, monotonic within a process).
{%- endif %}
Docs: https://www.rfc-editor.org/rfc/rfc9562#name-uuid-version-7
"""

{% if cookiecutter.python_version != "3.14" -%}
import sys
import uuid

if sys.version_info >= (3, 14):
    from uuid import uuid7
else:
    from uuid_utils.compat import uuid7
{%- else -%}
import uuid
from uuid import uuid7
{%- endif %}


def new_id() -> uuid.UUID:
    return uuid7()
