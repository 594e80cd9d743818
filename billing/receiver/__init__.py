"""The HTTP receiver: gateway notifies, card return pages, signed links, health and metrics.

Import from here: ``create_app`` builds the ASGI app, ``ReceiverServer`` runs it on uvicorn in a
thread. See ``billing.receiver.app`` for the routes and ``billing.receiver.notify`` for why each
notify answer is what it is.
"""

from billing.receiver.app import DEFAULT_MAX_BODY, create_app
from billing.receiver.server import ReceiverServer

__all__ = ["DEFAULT_MAX_BODY", "ReceiverServer", "create_app"]
