"""Reports for the merchant: what was invoiced, collected, recovered and owed, and MRR.

``build_report`` reads every figure with SQL aggregations (``queries``) from one consistent
snapshot; ``render`` turns a ``Report`` into HTML (with inline SVG ``charts``), CSV or JSON;
``delivery`` queues it to the merchant through the outbox, and the daemon's report tick does so
on the 1st of each month (and on Mondays with ``BILLING_REPORT_WEEKLY``), once per period.
Definitions of every figure: ``docs/reports.md``.
"""

from billing.reports.build import build_report
from billing.reports.figures import Report
from billing.reports.period import ReportRange, report_range

__all__ = ["Report", "ReportRange", "build_report", "report_range"]
