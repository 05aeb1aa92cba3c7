"""The JSON API, documented at /docs: one module per resource.

Routes stay short: who may call them and which room they touch are dependencies
(app/web/deps.py), and the domain's errors become HTTP answers in one place
(app/web/errors.py), so no route repeats an ``HTTPException`` block.
"""

from __future__ import annotations

from fastapi import APIRouter

from app.web.api import attachments, bots, me, messages, rooms, search, users

router = APIRouter(prefix="/api")
# In this order the operations appear in /docs, as they did from one module.
for resource in (me, rooms, messages, attachments, search, users, bots):
    router.include_router(resource.router)
