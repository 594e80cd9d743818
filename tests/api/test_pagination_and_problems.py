"""Cursor pages on lists, problem+json on every error, and an OpenAPI document that describes
the API alone, with every error declared."""

from __future__ import annotations

from typing import Any

import pytest

from billing.api.limits import MAX_AMOUNT, MAX_ID
from billing.api.pagination import decode_cursor, encode_cursor
from billing.domain.money import MAX_CHARGE
from billing.store.models import MAX_ROW_ID
from tests.api.conftest import Api, new_customer


def test_the_apis_bounds_are_the_stores() -> None:
    assert MAX_ID == MAX_ROW_ID and MAX_AMOUNT == MAX_CHARGE


def test_customers_come_in_pages_without_repeats(api: Api) -> None:
    for n in range(5):
        new_customer(api, f"cus_{n}")
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get("/v1/customers", params=params).json()
        seen += [c["external_id"] for c in page["data"]]
        pages += 1
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        cursor = page["next_cursor"]
    assert seen == [f"cus_{n}" for n in range(5)] and pages == 3


def test_a_row_added_between_pages_does_not_shift_them(api: Api) -> None:
    for n in range(3):
        new_customer(api, f"cus_{n}")
    first = api.get("/v1/customers", params={"limit": 2}).json()
    new_customer(api, "cus_late")
    rest = api.get("/v1/customers", params={"limit": 2,
                                            "cursor": first["next_cursor"]}).json()
    assert [c["external_id"] for c in rest["data"]] == ["cus_2", "cus_late"]


def test_events_page_newest_first(api: Api) -> None:
    for n in range(3):
        new_customer(api, f"cus_{n}")
    page = api.get("/v1/events", params={"limit": 2, "type": "customer."}).json()
    ids = [e["id"] for e in page["data"]]
    assert ids == sorted(ids, reverse=True) and page["has_more"]
    rest = api.get("/v1/events", params={"limit": 2, "type": "customer.",
                                         "cursor": page["next_cursor"]}).json()
    assert [e["data"]["external_id"] for e in rest["data"]] == ["cus_0"]
    assert not rest["has_more"]


def test_cursors_round_trip_and_foreign_ones_are_refused() -> None:
    assert decode_cursor(encode_cursor(42)) == 42
    assert decode_cursor(None) is None


@pytest.mark.parametrize("params, field", [
    ({"cursor": "bm90LWEtY3Vyc29y"}, "cursor"),
    ({"cursor": encode_cursor(MAX_ID)[:-2] + "zz"}, "cursor"),
    ({"limit": 0}, "limit"),
    ({"limit": 101}, "limit"),
    ({"limit": "ten"}, "limit"),
])
def test_bad_paging_is_a_422_naming_the_field(api: Api, params: dict[str, Any],
                                              field: str) -> None:
    response = api.get("/v1/customers", params=params)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == field


def test_a_problem_has_the_rfc_9457_members(api: Api) -> None:
    response = api.get("/v1/customers/nobody")
    assert response.status_code == 404
    problem = response.json()
    assert set(problem) >= {"type", "title", "status", "detail"}
    assert problem["status"] == 404 and problem["type"] == "urn:billing:problem:not-found"
    assert "nobody" in problem["detail"]


def test_validation_lists_every_field_at_fault(api: Api) -> None:
    response = api.post("/v1/customers", json={"external_id": "", "email": "x@y.z",
                                               "name": "N", "surprise": True})
    problem = response.json()
    assert response.status_code == 422 and problem["type"].endswith("validation-error")
    assert {e["field"] for e in problem["errors"]} == {"external_id", "surprise"}


def test_a_service_refusal_names_its_field(api: Api) -> None:
    response = api.post("/v1/customers", json={"external_id": "cus_1", "email": "nope",
                                               "name": "N"})
    assert response.status_code == 422
    assert response.json()["field"] == "email"


def test_a_card_number_is_never_echoed_in_an_error(api: Api) -> None:
    new_customer(api, "cus_1")
    number = "6250947000000014"
    response = api.post("/v1/customers/cus_1/cards", json={
        "number": number, "cvv": "12345", "expiry": "1330", "holder": number})
    assert response.status_code == 422
    assert number not in response.text
    response = api.post("/v1/customers", json={"external_id": number, "email": "a@b.cd",
                                               "name": "N"})
    assert response.status_code == 422 and number not in response.text


def test_malformed_json_is_a_422_not_a_500(api: Api) -> None:
    response = api.post("/v1/customers", data=b"{not json",
                        headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_unknown_routes_and_methods_under_v1_are_problems(api: Api) -> None:
    assert api.get("/v1/nothing").json()["type"].endswith("not-found")
    response = api.delete("/v1/customers")
    assert response.status_code == 405 and response.json()["type"].endswith("not-allowed")


def test_the_openapi_document_is_the_api_alone_with_every_error_declared(anon: Api) -> None:
    schema = anon.get("/openapi.json").json()
    paths = schema["paths"]
    assert all(p.startswith("/v1/") for p in paths)
    assert {"/v1/customers", "/v1/subscriptions/{sub_id}/change-preview",
            "/v1/invoices/{number}/render", "/v1/credit-notes", "/v1/events",
            "/v1/plans"} <= set(paths)
    for path, operations in paths.items():
        for method, op in operations.items():
            declared = set(op["responses"])
            assert {"400", "401", "404", "409", "422", "503"} <= declared, (path, method)
            for status in declared - {"200", "201"}:
                assert list(op["responses"][status]["content"]) == \
                    ["application/problem+json"], (path, method, status)
            if method == "post":
                names = {p["name"] for p in op.get("parameters", [])}
                assert "Idempotency-Key" in names, path
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    assert anon.get("/docs").status_code == 200


def test_refused_requests_change_nothing(api: Api, deps: object) -> None:
    """A spread of bad requests, each refused, and the audit trail is as it was: every state
    change writes an event, so an unchanged event list means nothing changed."""
    new_customer(api, "cus_1")
    before = api.get("/v1/events", params={"limit": 100}).json()["data"]
    bad: list[tuple[str, str, dict[str, Any] | None]] = [
        ("post", "/v1/customers", {"external_id": "#7", "email": "a@b.cd", "name": "N"}),
        ("post", "/v1/customers", {"external_id": "x", "email": "a@b.cd", "name": "N",
                                   "timezone": "Mars/Olympus"}),
        ("post", "/v1/subscriptions", {"customer": "cus_1", "plan": "no-such-plan"}),
        ("post", "/v1/subscriptions", {"customer": "cus_1", "plan": "starter-monthly",
                                       "quantity": 0}),
        ("post", "/v1/subscriptions", {"customer": "nobody", "plan": "starter-monthly"}),
        ("post", "/v1/subscriptions/2147483647/cancel", None),
        ("post", "/v1/subscriptions/1/change", {}),
        ("post", "/v1/invoices/INV-0000001/refunds", {"amount": 2**31}),
        ("post", "/v1/customers/cus_1/cards", {"number": "1", "cvv": "1", "expiry": "9999",
                                               "holder": ""}),
        ("delete", "/v1/customers/cus_1/cards/nope", None),
    ]
    for method, path, body in bad:
        response = api.request(method, path, json=body)
        assert 400 <= response.status_code < 500, (path, response.status_code, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    after = api.get("/v1/events", params={"limit": 100}).json()["data"]
    assert after == before


def test_an_outage_under_v1_is_a_declared_503_problem(api: Api, deps: Any) -> None:
    """The database goes away mid-flight: the answer is the 503 the document declares."""
    new_customer(api, "cus_1")
    deps.store.engine.dispose()
    original = deps.store.sessions

    def broken() -> Any:
        raise ConnectionError("database unreachable")

    deps.store.sessions = broken
    try:
        response = api.get("/v1/customers/cus_1")
    finally:
        deps.store.sessions = original
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:billing:problem:unavailable"
    assert response.headers["Retry-After"] == "30"


def test_a_nul_character_anywhere_is_a_422_not_a_driver_error(api: Api) -> None:
    """PostgreSQL text can't hold NUL: the API refuses it before any query."""
    new_customer(api, "cus_1")
    answers = [
        api.post("/v1/customers", json={"external_id": "a", "email": "a@b.cd", "name": "N\x00"}),
        api.get("/v1/customers/a%00b"),
        api.get("/v1/invoices", params={"customer": "a\x00b"}),
        api.get("/v1/events", params={"type": "payment\x00"}),
        api.post("/v1/subscriptions", json={"customer": "cus_1", "plan": "x\x00"}),
    ]
    for response in answers:
        assert response.status_code == 422, response.text
        assert "NUL" in response.json()["detail"]


def test_a_bad_query_without_a_key_is_still_401(anon: Api) -> None:
    assert anon.get("/v1/customers", params={"nonsense": "1"}).status_code == 401
