"""The errors the report can end with, each saying what went wrong in the user's words."""

from __future__ import annotations


class ReportError(Exception):
    """Base class: the run cannot produce a trustworthy report."""


class InvalidRequest(ReportError):
    """The event (or CLI flags) asked for something we will not do. Nothing is written or sent."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def as_response(self) -> dict:
        return {
            "status": "error",
            "error": {"type": "InvalidRequest", "field": self.field, "message": str(self)},
        }


class ConfigError(ReportError):
    """An environment variable is missing or malformed. Raised, so that the function's error alarm fires."""

    def __init__(self, variable: str, message: str):
        super().__init__(f"{variable}: {message}")
        self.variable = variable


class QueryFailed(ReportError):
    """A Logs Insights query ended Failed, Cancelled, Timeout or Unknown, or ran past the deadline."""


class IncompleteResults(ReportError):
    """The usage could not be proven complete; we refuse to deliver an undercount."""


class DeadlineExceeded(ReportError):
    """The run's time (Lambda's remaining time, or the CLI's --timeout) ran out before an AWS call could be made."""


class EmailNotSent(ReportError):
    """SES refused a batch (the error proves it did not accept it): its recipients do not have the email; a re-run
    sends to them."""


class EmailDeliveryUncertain(ReportError):
    """SES may or may not have accepted a batch (5xx, timeout, connection lost after sending). Never retried
    automatically: the recipients are named, and `force` sends again."""


class EmailInProgress(ReportError):
    """Another run holds this window's email claim and may still be sending it."""
