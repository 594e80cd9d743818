"""Operator routes: ``/healthz`` for load balancers and ``/metrics`` for Prometheus.

The health check runs ``SELECT 1`` on a raw DBAPI connection: through a SQLAlchemy session it
would open a transaction, which on SQLite is ``BEGIN IMMEDIATE`` and would queue behind every
writer. It gives up after ``HEALTH_TIMEOUT`` seconds (the probe thread is abandoned, not
waited for), so an unreachable database answers 503 instead of hanging the probe.
"""

from __future__ import annotations

import logging

import anyio
import anyio.to_thread
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from billing.metrics import Metrics
from billing.store.engine import Store

__all__ = ["HEALTH_TIMEOUT", "database_ok", "ops_router"]

log = logging.getLogger(__name__)

HEALTH_TIMEOUT = 3.0


def select_one(store: Store) -> bool:
    connection = store.engine.raw_connection()
    try:
        cursor = connection.cursor()
        try:
            cursor.execute("SELECT 1")
            return bool(cursor.fetchone())
        finally:
            cursor.close()
    finally:
        connection.close()


async def database_ok(store: Store, timeout: float = HEALTH_TIMEOUT) -> bool:
    with anyio.move_on_after(timeout):
        try:
            return await anyio.to_thread.run_sync(select_one, store, abandon_on_cancel=True)
        except Exception as exc:
            log.warning("health check: database unavailable (%s)", type(exc).__name__)
            return False
    log.warning("health check: database did not answer within %.1f s", timeout)
    return False


def ops_router(store: Store, metrics: Metrics) -> APIRouter:
    router = APIRouter()

    @router.get("/healthz")
    async def healthz() -> Response:
        if await database_ok(store):
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "unavailable"}, status_code=503)

    @router.get("/metrics")
    def metrics_endpoint() -> Response:
        return Response(metrics.exposition(), media_type=metrics.content_type)

    return router
