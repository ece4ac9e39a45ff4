"""Any event at all: parse_request answers with a finished, post-epoch window or an InvalidRequest naming a field."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import event as count_as
from hypothesis import strategies as st

from lambda_function.errors import InvalidRequest
from lambda_function.request import ALLOWED_KEYS, ReportRequest, parse_request
from lambda_function.window import PERIODS

from .depth import examples

UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ENVELOPE_KEYS = ["version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"]
TIMEZONES = [
    ZoneInfo(name) for name in ("UTC", "Europe/Berlin", "Pacific/Kiritimati", "Pacific/Pago_Pago", "America/St_Johns")
]
# ISO 8601 offsets at both ends of the real range (+14:00 Kiritimati, -12:00), a half hour, and none (naive)
OFFSETS = ["", "Z", "z", "+00:00", "+14:00", "-12:00", "+05:30", "-03:30", "+01:00"]
ODD_CHARACTERS = ["\x00", "\n", "\r\n", "\t", "\x1b", "\u2028", "\ufeff", "\u00a0", " "]

# JSON as Lambda could deliver it, plus what a Python caller could pass: huge ints, nan and infinities
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([2**63, -(2**63)])
    # over 4,300 digits, where repr() raises ValueError; built in a map because Hypothesis reprs sampled values
    | st.sampled_from([5000, -5000]).map(lambda n: 10**n if n > 0 else -(10**-n))
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


# Values "near now" are drawn near this instant, and `now` is drawn as a shift from it: Hypothesis tries a
# shift of 0 early and often, so windows ending exactly at now or scheduled exactly 5 minutes ahead come up.
BASE_NOW = datetime(2026, 11, 23, 6, 30)


def iso(moment: datetime, offset: str) -> str:
    return moment.isoformat() + offset


def _near(base: datetime, seconds: int) -> st.SearchStrategy[datetime]:
    return st.integers(-seconds, seconds).map(lambda s: base + timedelta(seconds=s))


# Dates and date-times across the whole representable range, near the epoch and near now
moments = (
    st.datetimes(min_value=datetime.min, max_value=datetime.max)
    | _near(datetime(1970, 1, 1), 3 * 86_400)
    | _near(BASE_NOW, 40 * 86_400)
    | _near(BASE_NOW, 600)
)
days = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)) | moments.map(lambda m: m.date())
iso_texts = st.builds(iso, moments, st.sampled_from(OFFSETS)) | days.map(date.isoformat)
# the same strings with something odd in front, behind or in place of the 'T'
odd_texts = st.builds(
    lambda text, char, where: (char + text, text + char, text.replace("T", char))[where],
    iso_texts,
    st.sampled_from(ODD_CHARACTERS),
    st.integers(0, 2),
)
when = iso_texts | odd_texts | json_values  # mostly dates, sometimes anything at all

emails = st.sampled_from(["finops@example.com", "a@b.co", "not-an-address", "", "a@example.com\n", "x@@y.com"])
recipients = st.lists(emails | st.text(max_size=10), max_size=3) | emails
periods = st.sampled_from([*PERIODS, "", "previous_year", "MONTH_TO_DATE", " previous_day"])
options = st.fixed_dictionaries(
    {},
    optional={
        "recipients": recipients | json_values,
        "send_email": st.booleans() | json_values,
        "force": st.booleans(),
    },
)
windows = st.one_of(
    st.fixed_dictionaries({"date": when}),
    st.fixed_dictionaries({"start": when, "end": when}),
    st.fixed_dictionaries({}, optional={"period": periods | json_values, "scheduled_time": when}),
)
events = st.one_of(
    st.builds(lambda window, extra: {**window, **extra}, windows, options),
    # an EventBridge rule's scheduled event
    st.fixed_dictionaries({"detail-type": st.just("Scheduled Event"), "time": when}, optional={"detail": json_values}),
    # any keys at all: the report's, the envelope's and random ones
    st.dictionaries(
        st.sampled_from([*ALLOWED_KEYS, *ENVELOPE_KEYS]) | st.text(max_size=8),
        when | periods | recipients,
        max_size=5,
    ),
    json_values,  # not an object at all
)
nows = (
    st.tuples(st.integers(-2 * 86_400, 2 * 86_400), st.sampled_from([0, 0, 1, 999_999])).map(
        lambda shift: BASE_NOW.replace(tzinfo=UTC) + timedelta(seconds=shift[0], microseconds=shift[1])
    )
    | st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
    # so soon after the epoch that the previous day, week or month began before it
    | st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(1970, 1, 3), timezones=st.just(UTC))
)


@settings(max_examples=examples(2000), deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(events, st.sampled_from(TIMEZONES), nows)
def test_any_event_gives_a_finished_window_or_names_the_field(event, tz, now):
    try:
        request = parse_request(event, tz=tz, now=now, default_recipients=("finops@example.com",))
    except InvalidRequest as err:
        assert isinstance(err.field, str) and err.field
        assert str(err).startswith(f"{err.field}: ")
        count_as(f"refused: {err.field}")
        return
    assert isinstance(request, ReportRequest)
    window = request.window
    assert window.start.tzinfo is not None and window.end.tzinfo is not None
    assert UNIX_EPOCH <= window.start < window.end <= now
    start, end = window.epoch_range()
    assert type(start) is int and type(end) is int
    assert 0 <= start <= end
    assert window.label
    assert window.as_json()["timezone"] == tz.key
    assert request.partial is (isinstance(event, dict) and event.get("period") == "month_to_date")  # None is {}
    count_as("accepted")
