"""The web layer's limits, each defined once for the API, the pages and the admin page.

Where the domain enforces a limit too (a room name's length, a message's), the
web layer declares it so a client learns it from the schema or the form instead
of from a 422.
"""

from __future__ import annotations

from app.settings import Settings

# Ids are 32-bit on PostgreSQL; a larger one is a 404 or 422, not a database error.
MAX_ID = 2**31 - 1
# Seqs are positive 64-bit integers (SQLite overflows past them).
MAX_SEQ = 2**63 - 1
# Messages per API page: the default, and the most one request may ask for.
PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
# As app.chat's clean_room_name and clean_description enforce them.
MAX_ROOM_NAME = 64
MAX_DESCRIPTION = 500
# The default; a server configured otherwise still refuses longer ones itself.
MAX_TEXT = Settings.model_fields["max_message_length"].default
