"""Recurring billing for UnionPay cards through IOTPay ExpressPay v3.

The package is cut by responsibility: ``domain`` holds the pure rules (money, calendar, state
machines) and imports no I/O; ``catalog``, ``store``, ``gateway``, ``services`` and ``cli`` sit
around it and depend inward.
"""

__version__ = "0.1.0"
