"""Budget windows (SPEC v2.1, Ledger: windowed budgets): fixed periods are epoch-aligned UTC windows, index =
floor(unix_time / period); `month` is the calendar month in UTC (index = months since January 1970)."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Self

_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}
_PERIOD_RE = re.compile(r"([1-9][0-9]{0,4})([mhd])")
MAX_PERIOD_COUNT = 10_000
_MONTH_KEEP_SECONDS = 31 * 86400  # the longest month: how long a monthly window is kept after it ends


class PeriodSyntaxError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Period:
    """`seconds` 0 means the calendar month."""

    seconds: int

    @classmethod
    def parse(cls, text: str) -> Self:
        if text == "month":
            return cls(0)
        match = _PERIOD_RE.fullmatch(text)
        if match is None or int(match[1]) > MAX_PERIOD_COUNT:
            raise PeriodSyntaxError(f"period {text!r} is not <n>m, <n>h or <n>d with n in 1..10000, nor 'month'")
        return cls(int(match[1]) * _UNIT_SECONDS[match[2]])

    def __str__(self) -> str:
        if self.seconds == 0:
            return "month"
        for unit in ("d", "h", "m"):
            if self.seconds % _UNIT_SECONDS[unit] == 0:
                return f"{self.seconds // _UNIT_SECONDS[unit]}{unit}"
        raise AssertionError(self.seconds)  # parse only makes whole minutes

    def index(self, at: float) -> int:
        """The window `at` (unix seconds) falls in."""
        if self.seconds:
            return int(at // self.seconds)
        moment = datetime.fromtimestamp(at, UTC)
        return (moment.year - 1970) * 12 + moment.month - 1

    def start(self, index: int) -> float:
        if self.seconds:
            return float(index * self.seconds)
        year, month = divmod(index, 12)
        return float(calendar.timegm((1970 + year, month + 1, 1, 0, 0, 0)))

    def end(self, index: int) -> float:
        """When window `index` ends (the next one starts), unix seconds."""
        return self.start(index + 1)

    def window_end(self, at: float) -> float:
        """When the window that `at` falls in ends: a windowed budget's reset."""
        return self.end(self.index(at))

    def keep_seconds(self, index: int, at: float) -> int:
        """How long from `at` the store keeps window `index`: to the end of the window after it (SPEC: windows
        before the previous one may be dropped), counted from the check's own time so an injected clock works."""
        after = self.seconds or _MONTH_KEEP_SECONDS
        return max(int(self.end(index) - at) + after + 1, 1)
