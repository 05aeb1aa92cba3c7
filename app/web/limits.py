"""The web layer's limits, each defined once for the API, the pages and the admin page.

Where the domain enforces a limit too (a room name's length, a message's), the
web layer declares it so a client learns it from the schema or the form instead
of from a 422.
"""

from __future__ import annotations

# Defined with the columns they bound (app.models); named here for the web layer.
from app.models import MAX_CLIENT_ID as MAX_CLIENT_ID
from app.models import MAX_DESCRIPTION as MAX_DESCRIPTION
from app.models import MAX_ID as MAX_ID
from app.models import MAX_ROOM_NAME as MAX_ROOM_NAME
from app.settings import Settings

# Seqs are positive 64-bit integers (SQLite overflows past them).
MAX_SEQ = 2**63 - 1
# Messages per API page: the default, and the most one request may ask for.
PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
# The default; a server configured otherwise still refuses longer ones itself.
MAX_TEXT = Settings.model_fields["max_message_length"].default
