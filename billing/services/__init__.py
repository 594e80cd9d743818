"""The service layer: verb-named functions that run one use case inside a unit of work.

Each receives its dependencies (unit of work, clock, gateway) as arguments; none reads settings or
the wall clock itself.
"""
