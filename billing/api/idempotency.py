"""Running a POST at most once per ``Idempotency-Key`` (``billing.services.idempotency``).

``respond_once`` claims the key before the work; the first answer (a success or a refusal such
as a 404 or 422) is stored and replayed with ``Idempotent-Replayed: true``. If the work fails
with a gateway error that says nothing was sent (``safe_to_resend``), the claim is released so
the client may retry with the same key. Any other failure may have happened after the work
committed (a subscription created, then its read failed), so the key keeps a 503
``outcome-unknown`` answer: a retry with it replays that instead of doing the work twice, and
the client looks (GET) before trying again with a new key.
The fingerprint is the request's method, path and validated body with secrets masked, so a
card number never reaches the table, even hashed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Header, Request, Response
from pydantic import BaseModel

from billing.api.problems import MEDIA_TYPE, problem_body, problem_of, problem_response
from billing.errors import GatewayError, UserError
from billing.services import idempotency
from billing.services.api_keys import Caller
from billing.services.ports import Deps

IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=1, max_length=idempotency.MAX_KEY_LENGTH,
    pattern=r"^[\x21-\x7e]+$",
    description="Any unique string (a UUID); the first response is replayed for 24 hours.")]
REPLAYED = "Idempotent-Replayed"
log = logging.getLogger(__name__)


def _json(status: int, model: BaseModel) -> Response:
    return Response(model.model_dump_json(), status_code=status, media_type="application/json")


def respond_once(deps: Deps, caller: Caller, request: Request, key: str | None,
                 body: BaseModel | None, work: Callable[[], tuple[int, BaseModel]]) -> Response:
    """Do ``work`` (which returns the status and the response model) once for ``key``."""
    if key is None:
        status, model = work()
        return _json(status, model)
    data: Any = body.model_dump(mode="json") if body is not None else None
    print_ = idempotency.fingerprint(request.method, request.url.path, data)
    claim = idempotency.begin(deps.store, caller.key_id, key, print_, deps.clock.now())
    if isinstance(claim, idempotency.Replay):
        media = MEDIA_TYPE if claim.status_code >= 400 else "application/json"
        return Response(claim.body, status_code=claim.status_code, media_type=media,
                        headers={REPLAYED: "true"})
    try:
        status, model = work()
    except UserError as exc:
        problem, headers = problem_of(exc)
        refused = problem_response(problem, headers)
        idempotency.finish(deps.store, claim, problem.status, bytes(refused.body).decode())
        return refused
    except Exception as exc:
        if isinstance(exc, GatewayError) and getattr(exc, "safe_to_resend", False):
            idempotency.release(deps.store, claim)
            raise
        unknown = problem_body(503, "outcome-unknown", "the request failed and may or may not "
                               "have taken effect; look before retrying with a new "
                               "Idempotency-Key")
        log.error("API request failed after its idempotency key was claimed: %s",
                  type(exc).__name__)
        failed = problem_response(unknown)
        try:
            idempotency.finish(deps.store, claim, 503, bytes(failed.body).decode())
        except Exception:  # the key stays in progress: retries get 409 until it expires
            log.error("could not record the outcome of idempotency key claim %d", claim.row_id)
        return failed
    response = _json(status, model)
    idempotency.finish(deps.store, claim, status, bytes(response.body).decode())
    return response
