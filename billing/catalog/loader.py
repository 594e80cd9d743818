"""Read plan YAML files into a validated catalog, reporting every mistake with file and line.

YAML is parsed twice from the same text: ``yaml.compose`` gives the node tree with line marks (and
reveals duplicate keys, which ``safe_load`` silently merges), ``yaml.safe_load`` gives the data.
pydantic's error locations are then mapped back to lines, so a user reads
``plans/pro.yaml:12: plans[0].interval.unit: must be one of day, week, month, year (got 'mnth')``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from billing.catalog.schema import DunningPolicySpec, PlanFile, PlanSpec
from billing.domain.calendar import Interval, IntervalUnit
from billing.domain.dunning import (
    DunningEmail,
    DunningPolicy,
    DunningStep,
    FinalAction,
)
from billing.domain.money import Money
from billing.domain.plans import MigrationPolicy, Plan, PlanTerms
from billing.domain.taxes import TaxRate
from billing.errors import CatalogError, Problem

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Catalog:
    """Validated plans, dunning policies and taxes, with where each plan was defined."""

    plans: dict[str, Plan]
    dunning_policies: dict[str, DunningPolicy]
    sources: dict[str, str]
    taxes: dict[str, tuple[TaxRate, ...]] = field(default_factory=dict)
    """Per province, the taxes its customers pay, in the order the files list them."""


def format_loc(loc: Iterable[str | int]) -> str:
    """``('plans', 0, 'interval')`` -> ``plans[0].interval``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _line_map(
    node: yaml.Node, loc: Loc, lines: dict[Loc, int], dupes: list[tuple[Loc, int]]
) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = (*loc, key)
            if key in seen:
                dupes.append((child, key_node.start_mark.line + 1))
            seen.add(key)
            lines[child] = key_node.start_mark.line + 1
            _line_map(value_node, child, lines, dupes)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*loc, i)] = item.start_mark.line + 1
            _line_map(item, (*loc, i), lines, dupes)


def _line_for(loc: Loc, lines: dict[Loc, int]) -> int | None:
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return lines.get((), 1)


def _expected(ctx: dict[str, Any]) -> str:
    return str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")


def _message(error: Any) -> str:
    """Turn a pydantic error into the sentence a plan author needs."""
    kind, ctx, got = error["type"], error.get("ctx") or {}, error.get("input")
    shown = f" (got {got!r})"
    messages: dict[str, Callable[[], str]] = {
        "literal_error": lambda: f"must be one of {_expected(ctx)}{shown}",
        "missing": lambda: "required field is missing",
        "extra_forbidden": lambda: "unknown field; see docs/plans.md for the fields a plan takes",
        "int_type": lambda: f"must be a whole number{shown}",
        "int_parsing": lambda: f"must be a whole number{shown}",
        "int_from_float": lambda: f"must be a whole number{shown}",
        "string_type": lambda: f"must be text{shown}",
        "list_type": lambda: f"must be a list{shown}",
        "model_type": lambda: f"must be a mapping of fields{shown}",
        "dict_type": lambda: f"must be a mapping of fields{shown}",
        "greater_than_equal": lambda: f"must be at least {ctx.get('ge')}{shown}",
        "less_than_equal": lambda: f"must be at most {ctx.get('le')}{shown}",
        "too_long": lambda: f"must have at most {ctx.get('max_length')} items",
        "string_too_long": lambda: f"must be at most {ctx.get('max_length')} characters",
        "string_too_short": lambda: "must not be empty",
        "string_pattern_mismatch": lambda: f"must be lowercase letters, digits, - or _{shown}",
    }
    if kind in messages:
        return messages[kind]()
    msg = str(error["msg"]).removeprefix("Value error, ")
    return msg[:1].lower() + msg[1:]


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@dataclass
class _ParsedFile:
    name: str
    lines: dict[Loc, int]
    spec: PlanFile | None
    policy_names: tuple[str, ...] = ()


def parse_file(path: Path) -> tuple[_ParsedFile, list[Problem]]:
    """Validate one YAML file; returns what validated plus every problem found in it."""
    name = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return _ParsedFile(name, {}, None), [Problem(name, None, "", f"cannot read: {exc}")]
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        problem = Problem(name, line, "", f"invalid YAML: {exc.problem}")
        return _ParsedFile(name, {}, None), [problem]
    except yaml.YAMLError as exc:
        return _ParsedFile(name, {}, None), [Problem(name, None, "", f"invalid YAML: {exc}")]
    lines: dict[Loc, int] = {(): 1}
    dupes: list[tuple[Loc, int]] = []
    if root is not None:
        _line_map(root, (), lines, dupes)
    problems = [Problem(name, ln, format_loc(loc), "duplicate key") for loc, ln in dupes]
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.append(Problem(name, 1, "", "a plan file must be a mapping with 'plans', "
                                "'dunning_policies' and/or 'taxes'"))
        return _ParsedFile(name, lines, None), problems
    try:
        spec: PlanFile | None = PlanFile.model_validate(data)
    except ValidationError as exc:
        spec = None
        for err in exc.errors():
            loc = tuple(err["loc"])
            problems.append(Problem(name, _line_for(loc, lines), format_loc(loc), _message(err)))
    return _ParsedFile(name, lines, spec, _raw_policy_names(data)), problems


def _raw_policy_names(data: dict[str, Any]) -> tuple[str, ...]:
    """Policy names even from an invalid file, so plans using them get no second, false error."""
    raw = data.get("dunning_policies")
    items = raw if isinstance(raw, list) else []
    return tuple(str(p["name"]) for p in items if isinstance(p, dict) and "name" in p)


def plan_files(directory: Path) -> list[Path]:
    """The YAML files of a catalog directory, in a stable order."""
    if not directory.is_dir():
        raise CatalogError([Problem(_display(directory), None, "", "not a directory")])
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    if not files:
        raise CatalogError([Problem(_display(directory), None, "", "no *.yaml plan files here")])
    return files


def load_catalog(directory: Path) -> Catalog:
    """Validate every file of ``directory`` together; raise ``CatalogError`` with all problems."""
    problems: list[Problem] = []
    parsed: list[_ParsedFile] = []
    for path in plan_files(directory):
        pf, found = parse_file(path)
        parsed.append(pf)
        problems.extend(found)
    policies: dict[str, tuple[DunningPolicySpec, str]] = {}
    plans: dict[str, tuple[PlanSpec, str]] = {}
    for pf in parsed:
        if pf.spec is None:
            continue
        for i, pol in enumerate(pf.spec.dunning_policies):
            where = Problem(pf.name, _line_for(("dunning_policies", i, "name"), pf.lines), "", "")
            if pol.name in policies:
                problems.append(Problem(where.file, where.line, f"dunning_policies[{i}].name",
                                        f"duplicate dunning policy {pol.name!r} "
                                        f"(first defined at {policies[pol.name][1]})"))
            else:
                policies[pol.name] = (pol, f"{where.file}:{where.line}")
        for i, plan in enumerate(pf.spec.plans):
            line = _line_for(("plans", i, "code"), pf.lines)
            if plan.code in plans:
                problems.append(Problem(pf.name, line, f"plans[{i}].code",
                                        f"duplicate plan code {plan.code!r} "
                                        f"(first defined at {plans[plan.code][1]})"))
            else:
                plans[plan.code] = (plan, f"{pf.name}:{line}")
    declared = {name for pf in parsed for name in pf.policy_names}
    for pf in parsed:
        for i, plan in enumerate(pf.spec.plans if pf.spec else []):
            if plan.dunning_policy not in declared:
                known = ", ".join(sorted(policies)) or "none"
                line = _line_for(("plans", i, "dunning_policy"), pf.lines)
                problems.append(Problem(pf.name, line,
                                        f"plans[{i}].dunning_policy",
                                        f"unknown dunning policy {plan.dunning_policy!r} "
                                        f"(defined: {known})"))
    taxes = _taxes(parsed, problems)
    if problems:
        raise CatalogError(problems)
    return Catalog(
        plans={code: to_plan(spec) for code, (spec, _) in plans.items()},
        dunning_policies={name: to_policy(spec) for name, (spec, _) in policies.items()},
        sources={code: where for code, (_, where) in plans.items()},
        taxes=taxes,
    )


def _taxes(parsed: list[_ParsedFile], problems: list[Problem]) -> dict[str, tuple[TaxRate, ...]]:
    """Every file's ``taxes:`` per province; a tax named twice for one province is a mistake
    (which of the two rates would apply?), reported where the second one is."""
    seen: dict[tuple[str, str], str] = {}
    out: dict[str, list[TaxRate]] = {}
    for pf in parsed:
        for i, tax in enumerate(pf.spec.taxes if pf.spec else []):
            line = _line_for(("taxes", i, "provinces"), pf.lines)
            for province in tax.provinces:
                key = (province, tax.name.casefold())
                if key in seen:
                    problems.append(Problem(pf.name, line, f"taxes[{i}].provinces",
                                            f"{tax.name} is already charged in {province} "
                                            f"(first defined at {seen[key]})"))
                    continue
                seen[key] = f"{pf.name}:{_line_for(('taxes', i, 'name'), pf.lines)}"
                out.setdefault(province, []).append(TaxRate(tax.name, Decimal(tax.rate)))
    return {province: tuple(rates) for province, rates in sorted(out.items())}


def to_plan(spec: PlanSpec) -> Plan:
    """Domain plan from a validated spec."""
    return Plan(
        code=spec.code,
        name=spec.name,
        description=spec.description,
        terms=PlanTerms(
            price=Money(spec.price, spec.currency),
            interval=Interval(IntervalUnit(spec.interval.unit), spec.interval.count),
        ),
        trial=timedelta(days=spec.trial_days),
        setup_fee=Money(spec.setup_fee, spec.currency) if spec.setup_fee else None,
        retry_schedule=tuple(spec.retry_schedule),
        dunning_policy=spec.dunning_policy,
        migration=MigrationPolicy(spec.migration),
    )


def to_policy(spec: DunningPolicySpec) -> DunningPolicy:
    """Domain dunning policy from a validated spec."""
    return DunningPolicy(
        name=spec.name,
        steps=tuple(DunningStep(s.after, DunningEmail(s.email)) for s in spec.steps),
        final_after=spec.final_action.after,
        final_action=FinalAction(spec.final_action.action),
        last_try=spec.final_action.last_try,
    )
