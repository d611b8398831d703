"""The documentation stays true to the code it describes."""

from __future__ import annotations

from pathlib import Path

from conveyor.domain.lifecycle import mermaid_diagram

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_lifecycle_doc_shows_the_diagram_generated_from_the_transition_table() -> None:
    assert mermaid_diagram() in (DOCS / "lifecycle.md").read_text()
