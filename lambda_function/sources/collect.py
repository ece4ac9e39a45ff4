"""Where usage comes from: one interface, `UsageSource`, that checks its inputs before anything is paid for and
collects a window's usage frame with the proof that it is complete. Two sources: Logs Insights over CloudWatch
Logs, and the logs delivered to S3 queried by an SQL engine (`s3logs.py`); `usage_source` chooses by LOG_SOURCE."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from lambda_function.aws import AwsClients
from lambda_function.config import Config
from lambda_function.sources.collected import CollectedUsage
from lambda_function.sources.insights import InsightsRunner, check_log_groups, plan_queries
from lambda_function.sources.query import COUNT_FIELD, SPLIT_FIELD, usage_query
from lambda_function.sources.usage import usage_frame
from lambda_function.window import ReportWindow


class UsageSource(Protocol):
    def check(self) -> None:
        """Raise ConfigError naming the setting when the source cannot be read."""

    def collect(
        self, window: ReportWindow, context_thresholds: Sequence[int], *, deadline: float
    ) -> CollectedUsage: ...


class LogsInsightsSource:
    """The invocation logs in CloudWatch Logs, aggregated by Logs Insights queries and proven complete."""

    def __init__(
        self, config: Config, aws: AwsClients, *, sleep: Callable[[float], None], clock: Callable[[], float]
    ) -> None:
        self._config, self._aws, self._sleep, self._clock = config, aws, sleep, clock

    def check(self) -> None:
        check_log_groups(self._config.log_groups, self._aws.logs, self._config.default_region)

    def collect(self, window: ReportWindow, context_thresholds: Sequence[int], *, deadline: float) -> CollectedUsage:
        config = self._config
        start, end = window.epoch_range()
        # A window within one UTC day needs no day on its rows (the common daily report in UTC): 48 bytes a row less
        first, last = (datetime.fromtimestamp(second, UTC).date() for second in (start, end))
        query = usage_query(context_thresholds, config.attribution_keys, by_day=first != last)
        specs = plan_queries(config.log_groups, config.default_region, start, end, query, config.query_row_limit)
        runner = InsightsRunner(
            self._aws.logs,
            sleep=self._sleep,
            clock=self._clock,
            deadline=deadline,
            concurrency=config.query_concurrency,
            split_field=SPLIT_FIELD,
        )
        results, totals = runner.run_all(specs, COUNT_FIELD)
        totals.log_groups = [group.identifier for group in config.log_groups]
        pages = (page for result in results for page in result.take_pages())
        frame = usage_frame(pages, config.attribution_keys, day=first if first == last else None)
        return CollectedUsage(frame, totals)


def usage_source(
    config: Config,
    aws: AwsClients,
    *,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> UsageSource:
    if config.log_source == "s3":
        from lambda_function.sources.s3logs import S3LogsSource

        return S3LogsSource(config, aws, now=now)
    return LogsInsightsSource(config, aws, sleep=sleep, clock=clock)
