"""The report: priced usage made into the CSV rows and their totals, compared with the reports before it, and
rendered as the email.

- `rows`: CSV rows (exact Decimal sums), the CSV, the totals (`summary.ReportSummary`);
- `history`: the previous period and the month to date, from the summaries in the store;
- `mail`: the Jinja2 templates rendered into a MIME message;
- `identities`: short names for identity ARNs.
"""

from lambda_function.report.history import History, look_back
from lambda_function.report.rows import Report, build_report

__all__ = ["History", "Report", "build_report", "look_back"]
