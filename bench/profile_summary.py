"""Summarize a py-spy ``--format raw --threads`` profile of the engine: where the samples go.

    .venv/bin/python bench/profile_summary.py PROFILE.txt [--seconds S --rate R] [--top N]

Each sample is attributed three ways:

* **owner**: the library that was running, i.e. the deepest frame that belongs to SQLAlchemy's
  ORM, SQLAlchemy Core, psycopg, the HTTP client stack (requests, urllib3, http.client), pydantic,
  json, logging or billing itself (stdlib helpers count for the library that called them);
* **thread**: the main thread (renewal and the intent phase of collection) or the ``charge_*``
  pool (send and record);
* **billing functions** (inclusive): every ``billing.*`` function on the stack, so
  ``record``, ``apply_outcome``, ``create_intents``... show their total share.

With ``--seconds`` (how long the profile ran) and ``--rate`` (samples per second), it also says
what fraction of that time a thread of the process held the GIL (when recorded with ``--gil``).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

OWNERS: tuple[tuple[str, str], ...] = (
    ("sqlalchemy/orm/", "SQLAlchemy ORM"),
    ("sqlalchemy/", "SQLAlchemy Core (sql, engine, pool, dialect)"),
    ("psycopg/", "psycopg"),
    ("psycopg_binary/", "psycopg"),
    ("requests/", "HTTP client (requests, urllib3, http.client)"),
    ("urllib3/", "HTTP client (requests, urllib3, http.client)"),
    ("http/client", "HTTP client (requests, urllib3, http.client)"),
    ("pydantic", "pydantic"),
    ("billing/gateway/", "billing.gateway (models, sign, replies)"),
    ("billing/", "billing services and domain"),
    ("json/", "json"),
    ("logging/", "logging"),
    ("concurrent/futures", "thread pool"),
    ("threading.py", "thread pool"),
)


def owner_of(path: str) -> str | None:
    for needle, name in OWNERS:
        if needle in path:
            return name
    return None


@dataclass
class Profile:
    samples: int = 0
    owners: Counter[str] = field(default_factory=Counter)
    threads: Counter[str] = field(default_factory=Counter)
    billing: Counter[str] = field(default_factory=Counter)
    leaves: Counter[str] = field(default_factory=Counter)


def parse(lines: Sequence[str]) -> Profile:
    prof = Profile()
    for raw in lines:
        raw = raw.rstrip("\n")
        if not raw.strip():
            continue
        stack_text, _, count_text = raw.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack_text.split(";")
        thread = "?"
        if frames and frames[0].startswith("thread ("):
            thread = frames[0].split(": ", 1)[-1]
            frames = frames[1:]
        group = "charge pool" if thread.startswith("charge") else thread
        prof.samples += count
        prof.threads[group] += count
        parsed = []
        for f in frames:
            m = _FRAME.match(f)
            parsed.append((m.group("func"), m.group("file")) if m else (f, ""))
        owner = next((o for _, path in reversed(parsed) if (o := owner_of(path)) is not None),
                     "other")
        prof.owners[owner] += count
        if parsed:
            func, path = parsed[-1]
            prof.leaves[f"{func} ({path})"] += count
        seen = set()
        for func, path in parsed:
            if "billing/" in path and "bench/" not in path:
                name = f"{path.split('billing/', 1)[1].removesuffix('.py').replace('/', '.')}"
                key = f"{name}.{func}"
                if key not in seen:
                    seen.add(key)
                    prof.billing[key] += count
    return prof


def pct(n: int, total: int) -> str:
    return f"{100 * n / total:5.1f}%" if total else "    -"


def render(prof: Profile, *, seconds: float | None, rate: float | None, top: int) -> str:
    out: list[str] = []
    total = prof.samples
    out.append(f"samples: {total}")
    if seconds and rate:
        out.append(f"GIL held by this process: {total / (seconds * rate) * 100:.0f}% of "
                   f"{seconds:.1f} s (at {rate:g} samples/s)")
    out.append("\nby thread:")
    out += [f"  {pct(n, total)}  {name}" for name, n in prof.threads.most_common()]
    out.append("\nby owner (library running at the sample):")
    out += [f"  {pct(n, total)}  {name}" for name, n in prof.owners.most_common()]
    out.append(f"\nbilling functions on the stack (inclusive), top {top}:")
    out += [f"  {pct(n, total)}  {name}" for name, n in prof.billing.most_common(top)]
    out.append(f"\nleaf frames (self), top {top}:")
    out += [f"  {pct(n, total)}  {name}" for name, n in prof.leaves.most_common(top)]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("profile", type=Path)
    p.add_argument("--seconds", type=float, default=None, help="how long the profile ran")
    p.add_argument("--rate", type=float, default=None, help="py-spy samples per second")
    p.add_argument("--top", type=int, default=25)
    a = p.parse_args(argv)
    prof = parse(a.profile.read_text(errors="replace").splitlines())
    print(render(prof, seconds=a.seconds, rate=a.rate, top=a.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
