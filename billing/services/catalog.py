"""Storing the YAML catalog: compute what changed, then (on apply) write plans, versions, taxes.

``diff_catalog`` changes nothing and says, per plan, whether it is new, gets a new version (its
price or interval changed), is only updated (name, trial, dunning...), unchanged or archived
(gone from the YAML), and how many subscriptions the change touches under the plan's migration
policy. ``apply_catalog`` performs exactly that diff in one transaction; re-applying is a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, func, select

from billing.catalog.loader import Catalog
from billing.clock import Clock
from billing.domain.calendar import Interval, IntervalUnit
from billing.domain.dunning import DunningPolicy
from billing.domain.money import Money
from billing.domain.plans import MigrationPolicy, Plan, PlanTerms
from billing.domain.subscriptions import Status
from billing.domain.taxes import TaxRate, format_percent
from billing.services.events import record_event
from billing.services.taxes import forget_rates
from billing.store.models import DunningPolicyRow, PlanVersion, Subscription, TaxRateRow
from billing.store.models import Plan as PlanRow
from billing.store.uow import UnitOfWork


class ChangeKind(StrEnum):
    NEW = "new"
    NEW_VERSION = "new version"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    ARCHIVED = "archived"


@dataclass
class PlanChange:
    code: str
    kind: ChangeKind
    changes: list[str] = field(default_factory=list)
    version: int = 1
    subscriptions: int = 0
    effect: str = ""


@dataclass
class CatalogDiff:
    plans: list[PlanChange]
    policies: dict[str, ChangeKind]
    taxes: dict[str, str] = field(default_factory=dict)
    """Per province whose taxes change: ``GST 5% + QST 9.975% (was none)``."""

    @property
    def has_changes(self) -> bool:
        return bool(self.taxes) or any(
            p.kind is not ChangeKind.UNCHANGED for p in self.plans) or any(
            k is not ChangeKind.UNCHANGED for k in self.policies.values()
        )


Taxes = dict[str, tuple[TaxRate, ...]]


def stored_taxes(uow: UnitOfWork) -> Taxes:
    """The catalog's taxes as stored, per province, in invoice order."""
    out: dict[str, list[TaxRate]] = {}
    for row in uow.session.scalars(select(TaxRateRow).order_by(TaxRateRow.province,
                                                               TaxRateRow.position)):
        out.setdefault(row.province, []).append(TaxRate(row.name, Decimal(row.rate)))
    return {province: tuple(rates) for province, rates in out.items()}


def _describe_taxes(rates: tuple[TaxRate, ...]) -> str:
    return " + ".join(rate.label for rate in rates) or "none"


def _tax_changes(stored: Taxes, wanted: Taxes) -> dict[str, str]:
    """Provinces whose list of (name, rate) changes, with the new and old lists in words."""
    def key(rates: tuple[TaxRate, ...]) -> list[tuple[str, str]]:
        return [(r.name, format_percent(r.percent)) for r in rates]

    return {province: f"{_describe_taxes(wanted.get(province, ()))} "
                      f"(was {_describe_taxes(stored.get(province, ()))})"
            for province in sorted(set(stored) | set(wanted))
            if key(stored.get(province, ())) != key(wanted.get(province, ()))}


def _terms_of(version: PlanVersion) -> PlanTerms:
    return PlanTerms(
        price=Money(version.price, version.currency),
        interval=Interval(IntervalUnit(version.interval_unit), version.interval_count),
    )


def _seconds(values: tuple[timedelta, ...]) -> list[int]:
    return [int(v.total_seconds()) for v in values]


def _settings_of(plan: Plan) -> dict[str, Any]:
    """The non-term fields kept on the plan row, in a comparable form."""
    return {
        "name": plan.name,
        "description": plan.description,
        "trial_days": plan.trial.days,
        "setup_fee": plan.setup_fee.amount if plan.setup_fee else None,
        "retry_schedule": _seconds(plan.retry_schedule),
        "dunning_policy": plan.dunning_policy,
        "migration": plan.migration.value,
    }


def _row_settings(row: PlanRow) -> dict[str, Any]:
    return {
        "name": row.name, "description": row.description, "trial_days": row.trial_days,
        "setup_fee": row.setup_fee, "retry_schedule": list(row.retry_schedule),
        "dunning_policy": row.dunning_policy, "migration": row.migration,
    }


def policy_definition(policy: DunningPolicy) -> dict[str, Any]:
    """A policy as stored JSON; also what an invoice snapshots when it enters dunning."""
    return {
        "steps": [{"after": int(s.after.total_seconds()), "email": s.email.value}
                  for s in policy.steps],
        "final_after": int(policy.final_after.total_seconds()),
        "final_action": policy.final_action.value,
        **({"last_try": True} if policy.last_try else {}),
    }


def _live_subscriptions(uow: UnitOfWork, plan_id: int) -> int:
    query = select(func.count(Subscription.id)).where(
        Subscription.plan_id == plan_id, Subscription.status != Status.CANCELED
    )
    return int(uow.session.scalar(query) or 0)


def _current_version(row: PlanRow) -> PlanVersion:
    return next(v for v in row.versions if v.version == row.current_version)


def _plan_change(uow: UnitOfWork, plan: Plan, row: PlanRow | None) -> PlanChange:
    if row is None:
        return PlanChange(plan.code, ChangeKind.NEW, [f"{plan.terms.price} every "
                                                      f"{plan.terms.interval}"])
    changes = plan.terms.changes_from(_terms_of(_current_version(row)))
    old, new = _row_settings(row), _settings_of(plan)
    settings = [f"{k} {old[k]!r} -> {new[k]!r}" for k in new if old[k] != new[k]]
    live = _live_subscriptions(uow, row.id)
    if changes:
        effect = (f"{live} subscription(s) keep v{row.current_version} (grandfather)"
                  if plan.migration is MigrationPolicy.GRANDFATHER
                  else f"{live} subscription(s) move to v{row.current_version + 1} at renewal")
        return PlanChange(plan.code, ChangeKind.NEW_VERSION, changes + settings,
                          row.current_version + 1, live, effect)
    kind = ChangeKind.UPDATED if settings or row.archived else ChangeKind.UNCHANGED
    if row.archived:
        settings.append("restored from archive")
    return PlanChange(plan.code, kind, settings, row.current_version, live)


def diff_catalog(uow: UnitOfWork, catalog: Catalog) -> CatalogDiff:
    """What ``apply_catalog`` would do, changing nothing."""
    rows = {r.code: r for r in uow.session.scalars(select(PlanRow))}
    changes = [_plan_change(uow, plan, rows.get(code))
               for code, plan in sorted(catalog.plans.items())]
    for code, row in sorted(rows.items()):
        if code not in catalog.plans and not row.archived:
            live = _live_subscriptions(uow, row.id)
            changes.append(PlanChange(code, ChangeKind.ARCHIVED, ["removed from the YAML"],
                                      row.current_version, live,
                                      f"{live} subscription(s) keep billing; no new sales"))
    stored = {r.name: r.definition for r in uow.session.scalars(select(DunningPolicyRow))}
    policies = {
        name: (ChangeKind.NEW if name not in stored
               else ChangeKind.UNCHANGED if stored[name] == policy_definition(pol)
               else ChangeKind.UPDATED)
        for name, pol in sorted(catalog.dunning_policies.items())
    }
    return CatalogDiff(changes, policies, _tax_changes(stored_taxes(uow), catalog.taxes))


def _version_row(plan: Plan, number: int, clock: Clock) -> PlanVersion:
    content = {
        "price": plan.terms.price.amount, "currency": plan.terms.price.currency,
        "interval": {"unit": plan.terms.interval.unit.value, "count": plan.terms.interval.count},
        **_settings_of(plan),
    }
    return PlanVersion(
        version=number, price=plan.terms.price.amount, currency=plan.terms.price.currency,
        interval_unit=plan.terms.interval.unit.value, interval_count=plan.terms.interval.count,
        content=content, created_at=clock.now(),
    )


def _write_settings(row: PlanRow, plan: Plan) -> None:
    for key, value in _settings_of(plan).items():
        setattr(row, key, value)
    row.currency = plan.terms.price.currency
    row.archived = False


def apply_catalog(uow: UnitOfWork, clock: Clock, catalog: Catalog) -> CatalogDiff:
    """Store the catalog: new plans, new versions, updated settings, archived plans, policies."""
    diff = diff_catalog(uow, catalog)
    session, now = uow.session, clock.now()
    rows = {r.code: r for r in session.scalars(select(PlanRow))}
    for change in diff.plans:
        if change.kind is ChangeKind.UNCHANGED:
            continue
        row = rows.get(change.code)
        if change.kind is ChangeKind.ARCHIVED:
            assert row is not None
            row.archived, row.updated_at = True, now
        else:
            plan = catalog.plans[change.code]
            if row is None:
                row = PlanRow(code=plan.code, current_version=1, updated_at=now)
                row.versions.append(_version_row(plan, 1, clock))
                session.add(row)
            elif change.kind is ChangeKind.NEW_VERSION:
                row.versions.append(_version_row(plan, change.version, clock))
                row.current_version = change.version
            _write_settings(row, plan)
            row.updated_at = now
        record_event(session, now, f"plan.{change.kind.value.replace(' ', '_')}",
                     plan=change.code, version=change.version, changes=change.changes)
    stored = {r.name: r for r in session.scalars(select(DunningPolicyRow))}
    for name, kind in diff.policies.items():
        if kind is ChangeKind.UNCHANGED:
            continue
        definition = policy_definition(catalog.dunning_policies[name])
        if name in stored:
            stored[name].definition, stored[name].updated_at = definition, now
        else:
            session.add(DunningPolicyRow(name=name, definition=definition, updated_at=now))
        record_event(session, now, f"dunning_policy.{kind.value}", policy=name)
    _write_taxes(uow, catalog.taxes, diff.taxes, now)
    uow.commit()
    return diff


def _write_taxes(uow: UnitOfWork, taxes: Taxes, changes: dict[str, str], now: datetime) -> None:
    """Rewrite the rates of each province that changed. Issued invoices keep the rates they were
    computed at (``invoice_taxes``); only invoices drafted from now on use the new ones."""
    if not changes:
        return
    session = uow.session
    forget_rates(session)
    session.execute(delete(TaxRateRow).where(TaxRateRow.province.in_(list(changes))))
    session.flush()
    for province in changes:
        for position, rate in enumerate(taxes.get(province, ())):
            session.add(TaxRateRow(province=province, name=rate.name,
                                   rate=format_percent(rate.percent), position=position,
                                   updated_at=now))
    record_event(session, now, "taxes.changed", provinces=changes)
