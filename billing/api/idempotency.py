"""Running a POST at most once per ``Idempotency-Key`` (``billing.services.idempotency``).

``respond_once`` claims the key before the work; the first answer (a success or a refusal such
as a 404 or 422) is stored and replayed with ``Idempotent-Replayed: true``. If the work fails
for a reason worth retrying (the gateway or the database unreachable) the claim is released, so
the client may retry with the same key; money operations stay safe because their services
never send a charge or refund twice (an unknown outcome is resolved by a query first).
The fingerprint is the request's method, path and validated body with secrets masked, so a
card number never reaches the table, even hashed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Header, Request, Response
from pydantic import BaseModel

from billing.api.problems import MEDIA_TYPE, problem_of, problem_response
from billing.errors import UserError
from billing.services import idempotency
from billing.services.api_keys import Caller
from billing.services.ports import Deps

IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=1, max_length=idempotency.MAX_KEY_LENGTH,
    pattern=r"^[\x21-\x7e]+$",
    description="Any unique string (a UUID); the first response is replayed for 24 hours.")]
REPLAYED = "Idempotent-Replayed"


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
    except Exception:
        idempotency.release(deps.store, claim)
        raise
    response = _json(status, model)
    idempotency.finish(deps.store, claim, status, bytes(response.body).decode())
    return response
