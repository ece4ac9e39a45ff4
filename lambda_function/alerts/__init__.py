"""A heads-up before the bill: budgets (BUDGETS) crossed and spend spikes against the trailing week, from the
summaries earlier runs left, each alert claimed once in the store.

- `budgets`: the budgets file read and checked, evaluated against the summaries, claimed, rendered;
- `spikes`: the trailing 7-day median and what stands above it;
- `watch`: both for one day's report, alert emails through the report's SES sender.
"""

from lambda_function.alerts.budgets import Budget, Budgets, load_budgets, read_budgets
from lambda_function.alerts.watch import Watch, watch_report

__all__ = ["Budget", "Budgets", "Watch", "load_budgets", "read_budgets", "watch_report"]
