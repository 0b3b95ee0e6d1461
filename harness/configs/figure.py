"""The ``figure`` section of a config: how ``harness report`` sizes and writes its figures.

Any config kind may carry it (a study, a comparison, a transfer); it changes no result, so
it is left out of a config's dump and hash (a study resumes after it changes). Defaults
suit a two-column paper: multi-panel figures span the page (6.9 in), single-panel ones
fit a column (3.3 in), and every static format is written.

Example:
    >>> FigureConfig.model_validate({"width": "column", "formats": ["pdf"]})
    FigureConfig(width='column', formats=['pdf'])
    >>> FigureConfig().width, FigureConfig().formats
    ('auto', ['pdf', 'svg', 'png'])
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from harness.configs.base import StrictModel, no_repeats

StaticFormat = Literal["pdf", "svg", "png"]
"""A static figure format (HTML and the figure's JSON are always written)."""


class FigureConfig(StrictModel):
    """How a report's figures are sized and which static files are written.

    Attributes:
        width: ``column`` (3.3 in) or ``page`` (6.9 in) for every figure; ``auto`` gives
            multi-panel figures the page and single-panel ones a column.
        formats: The static formats (needs a browser); empty for HTML and JSON only.
    """

    width: Literal["auto", "column", "page"] = "auto"
    formats: Annotated[list[StaticFormat], AfterValidator(no_repeats)] = Field(
        default_factory=lambda: ["pdf", "svg", "png"]
    )
