"""What AWS charged: a settled day's estimate against the bill.

- `reconcile`: the comparison (pure) and the Cost Explorer adapter;
- `settled`: the stage: which day, its stored summary, the verdict written back into it;
- `month`: a whole calendar month's report against that month's CUR bill, per identity and per team.

The CUR 2.0 reader (per identity) lands here beside Cost Explorer.
"""

from lambda_function.bill.settled import Reconciliation, reconcile_settled_day

__all__ = ["Reconciliation", "reconcile_settled_day"]
