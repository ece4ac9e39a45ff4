"""The report email, once per window: a marker in S3 that claims the sending and records each batch SES accepted.

Scheduler and Lambda's async retries can run a window twice, at the same time or later, and a run can die at any
instant. The marker (JSON beside the CSV) says where the email stands:

- `claimed` by run R until T: R is sending it, or died; `batches` lists those SES accepted, with message ids.
- `released`: R stopped on an error that proves the rest was not sent; the next run carries on at once.
- `uncertain`: SES may or may not have accepted a batch (5xx, timeout, connection lost after sending). It is
  never re-sent automatically; the run fails naming those recipients, and `force` sends again.
- `sent`: SES accepted every batch. Only then does a run answer "already sent".

Claims are S3 conditional writes (If-None-Match to create, If-Match to change), so two runs never both own it.
A claim whose run's time is over (T passed: Lambda has killed it) is taken over, and the new owner resumes with
the recipients not yet recorded as sent. So no batch is sent that its run could not record before T: a batch
starts only while a send and a marker write (ATTEMPT_SECONDS each) and CLAIM_SPARE_SECONDS still fit before the
claim expires; otherwise the claim is released and the run stops, and the next run resumes at once.

A marker is read only as what it claims to be: this schema, every field of its type, or exactly the shape an
earlier version wrote (`{"window": {...}, "recipients": [...]}`, kept only once sent). Anything else (`{}`, a
naive time, an unknown state) is a state we cannot know: EmailDeliveryUncertain naming the marker, never "sent".
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambda_function.aws import ATTEMPT_SECONDS, is_ambiguous
from lambda_function.errors import DeadlineExceeded, EmailDeliveryUncertain, EmailInProgress, EmailNotSent
from lambda_function.report.mail import message_bytes
from lambda_function.store import ConditionalObject

log = logging.getLogger(__name__)

SCHEMA = "bedrock-usage-report/email/2"
SES_MAX_RECIPIENTS = 50  # per message
STATES = frozenset({"claimed", "released", "uncertain", "sent"})
# Room left before a claim expires after a batch's send and its record (each ATTEMPT_SECONDS at worst): for the
# clocks of two runs that disagree a little, and the final write of the state.
CLAIM_SPARE_SECONDS = 10.0
SEND_AND_RECORD = timedelta(seconds=2 * ATTEMPT_SECONDS + CLAIM_SPARE_SECONDS)
# What the earlier version wrote (its claim, deleted when the send failed): the window as `ReportWindow.as_json`
# gives it, and the recipients.
EARLIER_VERSION_FIELDS = frozenset({"window", "recipients"})
WINDOW_FIELDS = frozenset({"start", "end", "timezone", "label"})


@dataclass
class Marker:
    state: str  # claimed | released | uncertain | sent
    run_id: str
    claimed_at: str
    expires_at: str  # when the claiming run is surely over (its Lambda timeout)
    window: dict[str, str]
    recipients: list[str]
    batches: list[dict[str, Any]] = field(default_factory=list)  # {"recipients", "message_id", "sent_at"}
    uncertain: list[dict[str, Any]] = field(default_factory=list)  # {"recipients", "error", "at"}
    etag: str = ""  # of the object as last read or written: the If-Match of the next change

    @property
    def sent_to(self) -> list[str]:
        return [address for batch in self.batches for address in batch["recipients"]]

    @property
    def uncertain_recipients(self) -> list[str]:
        return [address for batch in self.uncertain for address in batch["recipients"]]

    def document(self) -> bytes:
        body = {"schema": SCHEMA, **asdict(self)}
        del body["etag"]
        return (json.dumps(body, indent=2) + "\n").encode()


@dataclass(frozen=True)
class EmailOutcome:
    """What became of the report email: sent now, sent by an earlier run, or not asked for (`send_email: false`)."""

    sent: bool = False
    already_sent: bool = False
    reason: str = ""
    message_ids: tuple[str, ...] | None = None  # SES's, of this run's batches or of the earlier run's
    recipients: int = 0  # sent to by this run
    already_sent_to: int = 0  # by the earlier run whose claim this one took over
    asked: bool = True

    @property
    def delivered(self) -> bool:
        """Nothing is left to send for this window: sent, already sent, or no email asked for."""
        return self.sent or self.already_sent or not self.asked

    def as_json(self) -> dict[str, Any]:
        if self.sent:
            return {
                "sent": True,
                "message_id": self.message_ids[0] if self.message_ids else "",
                "message_ids": list(self.message_ids or ()),
                "recipients": self.recipients,
                "already_sent_to": self.already_sent_to,
            }
        answer: dict[str, Any] = {"sent": False}
        if self.reason:
            answer["reason"] = self.reason
        if self.message_ids is not None:
            answer["message_ids"] = list(self.message_ids)
        return answer


NOT_ASKED = EmailOutcome(asked=False)


@dataclass
class EmailStore:
    """The marker object: read it, create it only if absent, change it only if unchanged since read."""

    marker: ConditionalObject

    @property
    def uri(self) -> str:
        return self.marker.uri

    def read(self) -> Marker | None:
        """The marker, None when there is none; EmailDeliveryUncertain naming it when it is not one we wrote."""
        stored = self.marker.read()
        if stored is None:
            return None
        try:
            document = json.loads(stored.body)
            if not isinstance(document, dict):
                raise _Malformed("not a JSON object")
            if "schema" not in document and _is_earlier_version(document):
                # Written by an earlier version, which kept its marker only once the email had gone out.
                return Marker("sent", "earlier-version", "", "", document["window"], [], etag=stored.etag)
            return Marker(**_checked(document), etag=stored.etag)
        except (ValueError, _Malformed) as err:
            raise EmailDeliveryUncertain(
                f"the email marker {self.uri} cannot be read ({err}): whether this window's "
                'email went out is unknown. Check, then send with "force": true'
            ) from None

    def create(self, marker: Marker) -> bool:
        return self._written(marker, self.marker.create(marker.document()))

    def overwrite(self, marker: Marker) -> None:
        """Unconditionally: only `force` does this, over a marker that cannot even be read."""
        self._written(marker, self.marker.overwrite(marker.document()))

    def replace(self, marker: Marker) -> bool:
        """Write `marker` over the version it was read as; False when another run changed it meanwhile."""
        return self._written(marker, self.marker.replace(marker.document(), marker.etag))

    @staticmethod
    def _written(marker: Marker, etag: str | None) -> bool:
        if etag is None:
            return False
        marker.etag = etag
        return True


class _Malformed(Exception):
    """A marker that is not what this version (or the one before) writes."""


def _addresses(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(item, str) and item for item in value):
        raise _Malformed(f"{what} is not a non-empty list of addresses")
    return value


def _text(document: dict[str, Any], name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str):
        raise _Malformed(f"{name} is missing or not a string")
    return value


def _instant(document: dict[str, Any], name: str) -> str:
    """An ISO 8601 time with its offset (a naive one cannot be compared with now)."""
    value = _text(document, name)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _Malformed(f"{name} {value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise _Malformed(f"{name} {value!r} has no time zone")
    return value


def _entries(document: dict[str, Any], name: str, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """`batches` or `uncertain`: a list of objects, each with its recipients (a non-empty list) and `fields`."""
    value = document.get(name)
    if not isinstance(value, list):
        raise _Malformed(f"{name} is not a list")
    for n, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise _Malformed(f"{name}[{n}] is not an object")
        _addresses(entry.get("recipients"), f"{name}[{n}].recipients")
        for member in fields:
            if not isinstance(entry.get(member), str):
                raise _Malformed(f"{name}[{n}].{member} is missing or not a string")
    return value


def _checked(document: dict[str, Any]) -> dict[str, Any]:
    """The Marker fields of a document of this schema, each of its type; _Malformed naming the first that is not."""
    if document.get("schema") != SCHEMA:
        raise _Malformed(f"schema {document.get('schema')!r} is not {SCHEMA!r}")
    state = document.get("state")
    if state not in STATES:
        raise _Malformed(f"state {state!r} is not one of {', '.join(sorted(STATES))}")
    window = document.get("window")
    if not isinstance(window, dict) or not all(isinstance(v, str) for v in window.values()):
        raise _Malformed("window is not an object of strings")
    fields = {
        "state": state,
        "run_id": _text(document, "run_id"),
        "claimed_at": _text(document, "claimed_at"),
        "expires_at": _instant(document, "expires_at"),
        "window": window,
        "recipients": _addresses(document.get("recipients"), "recipients"),
        "batches": _entries(document, "batches", ("message_id", "sent_at")),
        "uncertain": _entries(document, "uncertain", ("error", "at")),
    }
    if state == "sent":
        # Said only when SES accepted a batch for every recipient: a "sent" that lists fewer is not ours.
        missing = set(fields["recipients"]) - {a for batch in fields["batches"] for a in batch["recipients"]}
        if missing:
            raise _Malformed(f"state 'sent' but no batch accepted for {_names(sorted(missing))}")
        if fields["uncertain"]:
            raise _Malformed("state 'sent' with batches of unknown fate")
    return fields


def _is_earlier_version(document: dict[str, Any]) -> bool:
    """Exactly what the version before the claim-and-batches marker wrote: {"window": {start, end, timezone,
    label}, "recipients": [addresses]}. (It wrote it before sending and deleted it when the send failed.)"""
    window = document.get("window")
    recipients = document.get("recipients")
    return (
        set(document) == EARLIER_VERSION_FIELDS
        and isinstance(window, dict)
        and set(window) == WINDOW_FIELDS
        and all(isinstance(value, str) and value for value in window.values())
        and isinstance(recipients, list)
        and bool(recipients)
        and all(isinstance(address, str) and address for address in recipients)
    )


def _batches(recipients: list[str]) -> list[list[str]]:
    return [recipients[i : i + SES_MAX_RECIPIENTS] for i in range(0, len(recipients), SES_MAX_RECIPIENTS)]


def _names(addresses: list[str], limit: int = 10) -> str:
    shown = ", ".join(addresses[:limit])
    return shown + (f" and {len(addresses) - limit} more" if len(addresses) > limit else "")


def claim(store: EmailStore, fresh: Marker, *, now: datetime, force: bool) -> Marker | EmailOutcome:
    """The marker this run now owns, or the answer when there is nothing to send (already sent)."""
    for _ in range(5):  # each lost race re-reads the marker
        try:
            current = store.read()
        except EmailDeliveryUncertain:
            if not force:
                raise
            store.overwrite(fresh)
            return fresh
        if current is not None and current.run_id == fresh.run_id:
            return current  # our own earlier write landed although its answer was lost
        if current is None:
            if store.create(fresh):
                return fresh
            continue
        if force:
            fresh.etag = current.etag
            if store.replace(fresh):
                return fresh
            continue
        if current.state == "sent":
            when = f" at {current.batches[-1]['sent_at']}" if current.batches else ""
            return EmailOutcome(
                already_sent=True,
                reason=f'already sent for this window{when}; send with "force": true to send again',
                message_ids=tuple(b["message_id"] for b in current.batches),
            )
        if current.state == "uncertain":
            raise EmailDeliveryUncertain(
                f"an earlier run could not tell whether SES accepted the email for "
                f"{_names(current.uncertain_recipients)}; they may or may not have it. Check, then send with "
                '"force": true to send it again to every recipient'
            )
        if current.state == "claimed" and now < datetime.fromisoformat(current.expires_at):
            raise EmailInProgress(
                f"run {current.run_id} claimed this window's email at {current.claimed_at} and may still be "
                f"sending it (its time ends at {current.expires_at}); a run after that sends what it did not"
            )
        # Released, or claimed by a run whose time is over: carry on where it stopped.
        taken = Marker(
            "claimed",
            fresh.run_id,
            fresh.claimed_at,
            fresh.expires_at,
            current.window,
            current.recipients,
            current.batches,
            current.uncertain,
            etag=current.etag,
        )
        if store.replace(taken):
            log.warning("took over the email claim of run %s (%s)", current.run_id, current.state)
            return taken
    raise EmailInProgress("the email's claim kept changing hands while this run tried to take it; run again")


def _send_batch(send: Callable[[bytes], str], message: EmailMessage, batch: list[str]) -> str:
    # Each batch with its own To header, and no Destinations: SES then sends to the header's addresses, so that no
    # message names more than 50. (Given both, moto counts the header and the list together against the limit.)
    del message["To"]
    message["To"] = ", ".join(batch)
    return send(message_bytes(message))


def send_once(
    marker_object: ConditionalObject,
    send: Callable[[bytes], str],
    message: EmailMessage,
    *,
    fresh: Marker,
    now: Callable[[], datetime],
    force: bool,
) -> EmailOutcome:
    """Send the email to the claim's recipients not yet sent to, recording each batch; see the module docstring.
    `send` sends one raw message and gives SES's message id."""
    store = EmailStore(marker_object)
    owned = claim(store, fresh, now=now(), force=force)
    if isinstance(owned, EmailOutcome):
        return owned
    marker = owned
    done = set(marker.sent_to) | set(marker.uncertain_recipients)
    pending = [address for address in marker.recipients if address not in done]
    already = len(marker.sent_to)
    if not pending and not marker.uncertain:
        # Taken over from a run that sent every batch but died before saying so.
        marker.state = "sent"
        _record(store, marker, "the end of sending")
        return EmailOutcome(
            already_sent=True, reason="already sent for this window (every batch was recorded as accepted)"
        )
    ids: list[str] = []
    for batch in _batches(pending):
        if now() + SEND_AND_RECORD >= datetime.fromisoformat(marker.expires_at):
            unsent = pending[pending.index(batch[0]) :]
            _release(store, marker, now)
            raise DeadlineExceeded(
                f"this run's claim on the email ends at {marker.expires_at}, too soon to send a batch and record "
                f"it ({SEND_AND_RECORD.total_seconds():.0f} s): {len(unsent)} recipient(s) do not have it "
                f"({_names(unsent)}); the claim is released, and a re-run sends to them and to no one else"
            )
        try:
            message_id = _send_batch(send, message, batch)
        except (ClientError, BotoCoreError, DeadlineExceeded) as err:
            if is_ambiguous(err):
                marker.uncertain.append({"recipients": batch, "error": str(err), "at": now().isoformat()})
                marker.state = "uncertain"
                _record(store, marker, "a batch whose fate is unknown")
                continue  # the other batches are independent: send them
            unsent = pending[pending.index(batch[0]) :]
            _release(store, marker, now)
            raise EmailNotSent(
                f"SES did not accept the email ({err}): {len(unsent)} recipient(s) do not have it "
                f"({_names(unsent)}); a re-run sends to them and to no one else"
            ) from err
        log.info("sent report email %s to %d recipient(s)", message_id, len(batch))
        marker.batches.append({"recipients": batch, "message_id": message_id, "sent_at": now().isoformat()})
        ids.append(message_id)
        if not _record(store, marker, f"batch {message_id}"):
            raise EmailDeliveryUncertain(
                f"SES accepted message {message_id} for {_names(batch)}, but the marker "
                f"{store.uri} could not record it: a run after this one's time ends would send "
                "it again. Check the marker before re-running"
            )
    if marker.uncertain:
        raise EmailDeliveryUncertain(
            f"SES may or may not have accepted the email for {_names(marker.uncertain_recipients)} "
            f"({marker.uncertain[-1]['error']}); it is not sent again automatically. Check, then send with "
            '"force": true to send it again to every recipient'
        )
    marker.state = "sent"
    _record(store, marker, "the end of sending")
    return EmailOutcome(sent=True, message_ids=tuple(ids), recipients=len(pending), already_sent_to=already)


def _release(store: EmailStore, marker: Marker, now: Callable[[], datetime]) -> None:
    """Hand the rest of the email to the next run at once (if this write fails, once the claim expires)."""
    marker.state = "released"
    marker.expires_at = now().isoformat()
    _record(store, marker, "the release of the claim")


def _record(store: EmailStore, marker: Marker, what: str) -> bool:
    """Write the marker's new state; False (logged) when S3 refuses it."""
    try:
        if store.replace(marker):
            return True
        # The If-Match failed: either our own write landed and only its answer was lost (the retry then finds the
        # ETag changed by ourselves), or another run took the claim over, which is a bug in the timing.
        current = store.read()
    except (ClientError, BotoCoreError, DeadlineExceeded) as err:
        log.error("could not record %s in %s: %s", what, store.uri, err)
        return False
    if current is not None and (current.run_id, current.state, current.batches, current.uncertain) == (
        marker.run_id,
        marker.state,
        marker.batches,
        marker.uncertain,
    ):
        marker.etag = current.etag
        return True
    raise EmailInProgress(f"another run took over this window's email while this one was sending ({what})")
