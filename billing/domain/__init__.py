"""The pure billing domain: money, calendar, catalog terms and state machines.

Nothing here performs I/O or reads the clock; a test enforces that no module in this package
imports database, network, scheduler, template or environment code.
"""
