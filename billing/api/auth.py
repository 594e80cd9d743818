"""``Authorization: Bearer <key>`` on every ``/v1`` route; anything else is 401.

The check runs as a dependency before the body is read, so a request without a valid key is
refused whatever it carries, and changes nothing (``billing.services.api_keys``: the key is
hashed and compared in constant time; revoked keys are refused). The dependencies it needs
come from ``app.state.api`` (the ``ApiContext`` that ``install_api`` put there).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from billing.api.context import ApiContext
from billing.api.problems import ApiProblem
from billing.services.api_keys import Caller, authenticate

bearer = HTTPBearer(auto_error=False, bearerFormat="bk_live_...",
                    description="An API key made by `billing api-keys create NAME`.")
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="billing"'}


def current_caller(request: Request, credentials: Annotated[
        HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Caller:
    """The request's bearer token as a ``Caller``, or a 401."""
    if credentials is None:
        raise ApiProblem(401, "unauthorized", "send an API key as "
                         "`Authorization: Bearer <key>`", headers=CHALLENGE)
    ctx: ApiContext = request.app.state.api
    found = authenticate(ctx.deps.store, credentials.credentials, ctx.deps.clock.now())
    if found is None:
        raise ApiProblem(401, "unauthorized", "this API key is unknown or revoked",
                         headers=CHALLENGE)
    return found


Auth = Annotated[Caller, Depends(current_caller)]
"""Declare ``caller: Auth`` on a route to require a valid key."""
