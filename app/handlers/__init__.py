"""Webhook handlers, one module per event family, composed into one router here.

Handlers run inside the intake transaction and must be quick: they look at the
payload, write what is cheap, and queue jobs for anything slow. Signature:
``async def handler(event, gh, *args, intake, **kwargs)`` where ``gh`` is the
``GitHubClients`` factory (no network unless a handler asks for a client) and
``intake`` is the ``app.intake.Intake`` for this delivery (``await intake.connection()``
is the database connection in the delivery's transaction, begun when first asked for:
a handler that does not need the database should not ask).
"""

from __future__ import annotations

from gidgethub import routing

from app.handlers import catalog_push, checks, fulfilment, installation, mirror, requests

router = routing.Router(
    installation.router,
    checks.router,
    catalog_push.router,
    mirror.router,
    requests.router,
    fulfilment.router,
)
