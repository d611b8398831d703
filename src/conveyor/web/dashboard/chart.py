"""The overview's throughput chart as SVG geometry, computed on the server."""

from __future__ import annotations

from dataclasses import dataclass

from conveyor.store.dashboard import SpanCount

WIDTH = 600
HEIGHT = 140
BAR_GAP = 2


@dataclass(frozen=True, slots=True)
class Bar:
    """One span's stacked bar: completed at the bottom, discarded above it."""

    x: float
    width: float
    completed_y: float
    completed_height: float
    discarded_y: float
    discarded_height: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    """Bars scaled to the busiest span, with totals for the caption."""

    bars: list[Bar]
    peak: int
    completed: int
    discarded: int
    width: int = WIDTH
    height: int = HEIGHT


def throughput_chart(spans: list[SpanCount], label_format: str = "%H:%M") -> Chart:
    """Scale per-span counts into bars that fill the chart's height at the peak; each
    bar's label names its start with ``label_format`` (UTC)."""
    peak = max((m.completed + m.discarded for m in spans), default=0)
    slot = WIDTH / max(len(spans), 1)
    scale = HEIGHT / peak if peak else 0.0
    bars = []
    for index, span in enumerate(spans):
        done, failed = span.completed * scale, span.discarded * scale
        when = span.start.strftime(label_format)
        label = f"{when} UTC: {span.completed} completed, {span.discarded} discarded"
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
        sum(m.completed for m in spans),
        sum(m.discarded for m in spans),
    )
