"""The overview's throughput chart as SVG geometry, computed on the server."""

from __future__ import annotations

from dataclasses import dataclass

from conveyor.store.dashboard import MinuteCount

WIDTH = 600
HEIGHT = 140
BAR_GAP = 2


@dataclass(frozen=True, slots=True)
class Bar:
    """One minute's stacked bar: completed at the bottom, discarded above it."""

    x: float
    width: float
    completed_y: float
    completed_height: float
    discarded_y: float
    discarded_height: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    """Bars scaled to the busiest minute, with totals for the caption."""

    bars: list[Bar]
    peak: int
    completed: int
    discarded: int
    width: int = WIDTH
    height: int = HEIGHT


def throughput_chart(minutes: list[MinuteCount]) -> Chart:
    """Scale per-minute counts into bars that fill the chart's height at the peak."""
    peak = max((m.completed + m.discarded for m in minutes), default=0)
    slot = WIDTH / max(len(minutes), 1)
    scale = HEIGHT / peak if peak else 0.0
    bars = []
    for index, minute in enumerate(minutes):
        done, failed = minute.completed * scale, minute.discarded * scale
        label = (
            f"{minute.minute:%H:%M} UTC: {minute.completed} completed, {minute.discarded} discarded"
        )
        bars.append(
            Bar(
                x=round(index * slot, 2),
                width=round(max(slot - BAR_GAP, 1.0), 2),
                completed_y=round(HEIGHT - done, 2),
                completed_height=round(done, 2),
                discarded_y=round(HEIGHT - done - failed, 2),
                discarded_height=round(failed, 2),
                label=label,
            )
        )
    return Chart(
        bars,
        peak,
        sum(m.completed for m in minutes),
        sum(m.discarded for m in minutes),
    )
