"""What a source hands the report: the window's usage frame and what it says about how it was read."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

import pandas as pd


class SourceTotals(Protocol):
    """What a source says about how it read the window: the metrics, the response and the footer read these."""

    queries: int
    records_matched: int
    bytes_scanned: int
    rows_fetched: int

    @property
    def gaps(self) -> int:
        """What the source could not read and names (0 where it proves the whole window read or fails)."""

    @property
    def cost_usd(self) -> Decimal:
        """What reading the window cost (the query engine's charge for what it scanned)."""

    def footer(self) -> dict[str, Any]: ...


@dataclass
class CollectedUsage:
    """A window's usage (one row per identity, model, region and option: `sources.usage.COLUMNS`) and what the
    footer says about how it was read."""

    frame: pd.DataFrame
    totals: SourceTotals

    def take_frame(self) -> pd.DataFrame:
        """The frame, handed over: at 100,000 groups it is tens of MiB, and the stages after it make their own."""
        frame, self.frame = self.frame, self.frame.iloc[0:0]
        return frame


__all__ = ["CollectedUsage", "SourceTotals"]
