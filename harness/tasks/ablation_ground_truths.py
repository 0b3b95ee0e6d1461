"""Which ground truth is made for which ablation: a circuit is sufficient under the
ablation its edges were found (or trained) with, so a method run with resample ablation is
scored against a ground truth made for resample ablation.

- resample: tracr's ``resample`` circuits; a SIIT-trained model's ``siit`` circuit (its
  training resamples nodes from other inputs, and its edges are checked by resample
  ablation);
- zero: tracr's ``zero`` circuits, or the ACDC paper's ``acdc-zero``.

Example:
    >>> made_for("resample", ("siit", "tracr-resample")), made_for("zero", ("siit",))
    ('siit', None)
"""

from __future__ import annotations

from collections.abc import Iterable

ABLATION_GROUND_TRUTHS: dict[str, tuple[str, ...]] = {
    "resample": ("resample", "siit"),
    "zero": ("zero", "acdc-zero"),
}
"""Ablation -> the ground-truth names made for it, in order of preference."""


def made_for(ablation: str, names: Iterable[str]) -> str | None:
    """The first of ``names`` made for ``ablation`` (by :data:`ABLATION_GROUND_TRUTHS`'s
    preference), or ``None``."""
    names = set(names)
    for name in ABLATION_GROUND_TRUTHS.get(ablation, ()):
        if name in names:
            return name
    return None
