"""The AUC conventions a report shows, each with the one line its captions give.

Every table and figure of a report names its convention (see
:mod:`harness.evaluation.roc`): a number without one is not comparable with the papers'.

Example:
    >>> CONVENTIONS
    ('score-trapezoid', 'sweep-pessimistic')
    >>> CONVENTION_NOTES["sweep-pessimistic"]
    "one circuit per sweep run, pessimistic staircase (the ACDC paper's)"
"""

from __future__ import annotations

from harness.evaluation.roc import SCORE_TRAPEZOID, SWEEP_PESSIMISTIC

CONVENTIONS = (SCORE_TRAPEZOID, SWEEP_PESSIMISTIC)
CONVENTION_NOTES = {
    SCORE_TRAPEZOID: "one ranking of all edges by |score|, ties together, trapezoid rule",
    SWEEP_PESSIMISTIC: "one circuit per sweep run, pessimistic staircase (the ACDC paper's)",
}
