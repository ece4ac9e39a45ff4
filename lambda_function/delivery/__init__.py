"""The report email: composed (attached while SES takes the size, else the link), and sent once per window.

- `email`: the SES sender, the link's lifetime, the composed message, the send;
- `once`: the once-only marker's states and the batched send that resumes where a run stopped.
"""

from lambda_function.delivery.email import Claim, ComposedEmail, Ses, report_email, send_report_once
from lambda_function.delivery.once import NOT_ASKED, EmailOutcome

__all__ = ["NOT_ASKED", "Claim", "ComposedEmail", "EmailOutcome", "Ses", "report_email", "send_report_once"]
