"""``IotpayClient``: one typed method per ExpressPay v3 endpoint, and nothing clever.

What it promises the engine:
- a request that fails local validation raises ``GatewayRequestInvalid`` and is never sent;
- every transit failure is ``GatewayNotSent`` (safe to send again) or ``GatewayOutcomeUnknown``
  (resolve with ``cc_query`` first), see ``billing.gateway.transport``;
- an answered call is a ``GatewayReply``, including ``retCode=FAIL`` and declines;
- purchase, refund, void and add-card calls are sent exactly once per method call: neither this
  class nor urllib3 (``max_retries=0``) re-sends them. Only the read-only ``cc_query`` and
  ``cc_querycard`` are retried, with capped, jittered exponential backoff;
- log lines carry endpoint, reference, outcome and elapsed time, never the key or card data.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self, TypeVar
from urllib.parse import urljoin

import requests
from pydantic import BaseModel, SecretStr, ValidationError
from requests.adapters import HTTPAdapter

from billing.errors import ConfigError
from billing.gateway import models as m
from billing.gateway.errors import GatewayCallError, GatewayOutcomeUnknown
from billing.gateway.masking import redact_pans
from billing.gateway.replies import CardInfo, GatewayReply, OrderInfo, RedirectInfo
from billing.gateway.sign import sign
from billing.gateway.transport import TransportFailure, classify_failure, decode_body
from billing.settings import Settings

__all__ = ["IotpayClient", "QueryRetry", "default_session"]

log = logging.getLogger(__name__)

_HEADERS = {"Content-Type": "application/json;charset=UTF-8", "Accept": "application/json"}
R = TypeVar("R", bound=BaseModel)


@dataclass(frozen=True)
class QueryRetry:
    """How read-only calls are retried: ``attempts`` in total, delays doubling from ``base_delay``
    up to ``max_delay``, each drawn uniformly from [d/2, d] so many clients do not retry in step."""

    attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 4.0

    def delay(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry`` (0-based)."""
        ceiling = min(self.max_delay, self.base_delay * (2**retry))
        return float(ceiling / 2 + rng.uniform(0, ceiling / 2))


def default_session(pool_size: int = 16, base_url: str | None = None) -> requests.Session:
    """A session whose adapters never retry (a re-sent POST could charge twice) and whose pool
    holds one connection per concurrent charge so threads do not open and drop sockets."""
    session = requests.Session()
    if base_url is not None:
        # Read proxy and CA-bundle variables once, here, instead of on every request: that
        # lookup was a measurable share of each charge's CPU time (bench/README.md).
        session.proxies.update(requests.utils.get_environ_proxies(base_url))
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            session.verify = bundle
        session.trust_env = False
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class IotpayClient:
    """Typed access to IOTPay ExpressPay v3 for one merchant."""

    def __init__(
        self,
        *,
        base_url: str,
        mch_id: str,
        mch_key: str | SecretStr,
        login_name: str,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
        pool_size: int = 16,
        query_retry: QueryRetry | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"gateway base URL must start with http:// or https://: {base_url}")
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.mch_id = mch_id
        self.login_name = login_name
        self._key = mch_key if isinstance(mch_key, SecretStr) else SecretStr(mch_key)
        self._owns_session = session is None
        self._session = (session if session is not None
                         else default_session(pool_size, self.base_url))
        self._timeout = timeout
        self._retry = query_retry or QueryRetry()
        self._rng = rng or random.Random()
        self._sleep = sleep

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> IotpayClient:
        """A client for the configured merchant; missing credentials are a ``ConfigError``."""
        mch_id, key, login = (
            settings.iotpay_mch_id,
            settings.iotpay_mch_key,
            settings.iotpay_login_name,
        )
        if mch_id is None or key is None or login is None:
            env_names = ("IOTPAY_MCH_ID", "IOTPAY_MCH_KEY", "IOTPAY_LOGIN_NAME")
            names = zip(env_names, (mch_id, key, login), strict=True)
            missing = ", ".join(env for env, value in names if value is None)
            raise ConfigError(f"gateway credentials not set: {missing}")
        return cls(
            base_url=settings.iotpay_base_url,
            mch_id=mch_id,
            mch_key=key,
            login_name=login,
            timeout=(settings.iotpay_connect_timeout, settings.iotpay_read_timeout),
            pool_size=settings.charge_concurrency,
            **kwargs,
        )

    def __repr__(self) -> str:
        return f"IotpayClient(base_url={self.base_url!r}, mch_id={self.mch_id!r})"

    def close(self) -> None:
        """Close the session if this client created it."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- endpoints -------------------------------------------------------------------------

    def cc_purchase(
        self,
        *,
        mch_order_no: str,
        mch_user_id: str,
        amount: int,
        notify_url: str,
        return_url: str,
        currency: str = "CAD",
        subject: str | None = None,
        body: str | None = None,
    ) -> GatewayReply[RedirectInfo]:
        """Start a hosted one-off payment; redirect the customer to ``data.redirect_url``."""
        req = m.build(
            m.PurchaseRequest, **self._signed_in(), mch_order_no=mch_order_no,
            mch_user_id=mch_user_id, amount=amount, currency=currency, subject=subject,
            body=body, notify_url=notify_url, return_url=return_url,
        )  # fmt: skip
        return self._once("cc_purchase", req, mch_order_no, RedirectInfo, need_data=True)

    def cc_addcard(self, *, card_id: str, return_url: str) -> GatewayReply[RedirectInfo]:
        """Start hosted card entry for ``card_id``; send the customer to ``data.redirect_url``."""
        req = m.build(m.AddCardRequest, **self._signed_in(), card_id=card_id, return_url=return_url)
        return self._once("cc_addcard", req, card_id, RedirectInfo, need_data=True)

    def cc_directaddcard(
        self,
        *,
        card_id: str,
        card_num: str | SecretStr,
        holder: str,
        cvv: str | SecretStr,
        expiry_date: str | None = None,
    ) -> GatewayReply[CardInfo]:
        """Vault a card sent by the merchant (PCI DSS merchants only); the reply is masked."""
        req = m.build(
            m.DirectAddCardRequest, **self._signed_in(), card_id=card_id, card_num=card_num,
            expiry_date=expiry_date, holder=holder, cvv=cvv,
        )  # fmt: skip
        return self._once("cc_directaddcard", req, card_id, CardInfo, need_data=False)

    def cc_querycard(self, *, card_id: str) -> GatewayReply[CardInfo]:
        """The vaulted card's masked number, expiry and holder; retried on transit failures."""
        req = m.build(m.QueryCardRequest, mch_id=self.mch_id, card_id=card_id)
        return self._retried("cc_querycard", req, card_id, CardInfo, need_data=False)

    def cc_purchasewithtoken(
        self,
        *,
        mch_order_no: str,
        mch_user_id: str,
        card_id: str,
        amount: int,
        notify_url: str,
        currency: str = "CAD",
        subject: str | None = None,
        body: str | None = None,
        client_ip: str | None = None,
    ) -> GatewayReply[OrderInfo]:
        """Charge a vaulted card once. ``data.status`` 2/3 paid, 9 declined (reason in
        ``ret_msg``), anything else unsettled. Never retried: on ``GatewayOutcomeUnknown``
        resolve with ``cc_query(mch_order_no=...)``."""
        req = m.build(
            m.PurchaseWithTokenRequest, **self._signed_in(), mch_order_no=mch_order_no,
            mch_user_id=mch_user_id, card_id=card_id, amount=amount, currency=currency,
            subject=subject, body=body, client_ip=client_ip, notify_url=notify_url,
        )  # fmt: skip
        return self._once("cc_purchasewithtoken", req, mch_order_no, OrderInfo, need_data=True)

    def cc_refund(
        self, *, mch_refund_no: str, pay_order_id: str, refund_amount: int, notify_url: str
    ) -> GatewayReply[OrderInfo]:
        """Refund part or all of a paid order; never retried (re-send the same ``mch_refund_no``
        to resolve an unknown outcome: the gateway treats it as the same refund)."""
        req = m.build(
            m.RefundRequest, **self._signed_in(), mch_refund_no=mch_refund_no,
            pay_order_id=pay_order_id, refund_amount=refund_amount, notify_url=notify_url,
        )  # fmt: skip
        return self._once("cc_refund", req, mch_refund_no, OrderInfo, need_data=True)

    def cc_void(
        self, *, mch_refund_no: str, pay_order_id: str, notify_url: str
    ) -> GatewayReply[OrderInfo]:
        """Cancel a payment in full on the day it was made; never retried."""
        req = m.build(
            m.VoidRequest, **self._signed_in(), mch_refund_no=mch_refund_no,
            pay_order_id=pay_order_id, notify_url=notify_url,
        )  # fmt: skip
        return self._once("cc_void", req, mch_refund_no, OrderInfo, need_data=True)

    def cc_query(
        self, *, mch_order_no: str | None = None, pay_order_id: str | None = None
    ) -> GatewayReply[OrderInfo]:
        """Look an order up by exactly one of its numbers; retried on transit failures.
        ``reply.order_not_found`` tells "no such order" from other refusals."""
        req = m.build(
            m.QueryRequest, mch_id=self.mch_id, mch_order_no=mch_order_no, pay_order_id=pay_order_id
        )
        reference = mch_order_no if mch_order_no is not None else pay_order_id
        return self._retried("cc_query", req, reference, OrderInfo, need_data=True)

    # --- plumbing --------------------------------------------------------------------------

    def _signed_in(self) -> dict[str, object]:
        return {"mch_id": self.mch_id, "login_name": self.login_name}

    def _once(
        self, endpoint: str, req: m.WireModel, ref: str | None, model: type[R], *, need_data: bool
    ) -> GatewayReply[R]:
        return self._call(endpoint, req.wire(), ref, model, need_data)

    def _retried(
        self, endpoint: str, req: m.WireModel, ref: str | None, model: type[R], *, need_data: bool
    ) -> GatewayReply[R]:
        payload = req.wire()
        for retry in range(self._retry.attempts):
            try:
                return self._call(endpoint, payload, ref, model, need_data)
            except GatewayCallError:
                if retry + 1 >= self._retry.attempts:
                    raise
                self._sleep(self._retry.delay(retry, self._rng))
        raise AssertionError("unreachable: QueryRetry.attempts must be >= 1")

    def _call(
        self,
        endpoint: str,
        payload: Mapping[str, object],
        ref: str | None,
        model: type[R],
        need_data: bool,
    ) -> GatewayReply[R]:
        started = time.monotonic()
        try:
            doc = self._post(endpoint, payload, ref)
            reply = _reply(endpoint, ref, doc, model, need_data)
        except GatewayCallError as exc:
            outcome = "not_sent" if exc.safe_to_resend else "unknown"
            _log_call(endpoint, ref, started, f"outcome={outcome} {type(exc).__name__}")
            raise
        status = getattr(reply.data, "status", None)
        # retCode says whether the call was accepted; status (for orders) whether money moved.
        _log_call(endpoint, ref, started,
                  f"retCode={reply.ret_code} status={status} msg={reply.ret_msg}")
        return reply

    def _post(self, endpoint: str, payload: Mapping[str, object], ref: str | None) -> Any:
        body = dict(payload)
        body["sign"] = sign(body, self._key)
        data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        url = urljoin(self.base_url, endpoint)
        try:
            with self._session.post(url, data=data, headers=_HEADERS, timeout=self._timeout) as r:
                status, content = r.status_code, r.content
        except TransportFailure as exc:
            raise classify_failure(exc, endpoint=endpoint, reference=ref) from exc
        return decode_body(endpoint=endpoint, reference=ref, status=status, content=content)


def _reply(
    endpoint: str, ref: str | None, doc: dict[str, Any], model: type[R], need_data: bool
) -> GatewayReply[R]:
    """Wrap a decoded body; an accepted call whose data we cannot read has an unknown outcome."""
    code = str(doc["retCode"])
    raw = doc.get("retData")
    if raw is None and model is RedirectInfo and "redirectUrl" in doc:
        raw = doc  # the reference's PHP demo reads redirectUrl at the top level
    data: R | None = None
    if isinstance(raw, dict):
        try:
            data = model.model_validate(raw)
        except ValidationError:
            data = None
    if code == "SUCCESS" and need_data and data is None:
        raise GatewayOutcomeUnknown(
            f"{endpoint}: outcome unknown: retCode=SUCCESS without readable retData",
            endpoint=endpoint,
            reference=ref,
            http_status=200,
        )
    return GatewayReply(endpoint, code, redact_pans(str(doc.get("retMsg") or "")), data)


def _log_call(endpoint: str, ref: str | None, started: float, detail: str) -> None:
    elapsed_ms = (time.monotonic() - started) * 1000
    log.info("iotpay %s ref=%s %s elapsed_ms=%.1f", endpoint, ref, detail, elapsed_ms)
