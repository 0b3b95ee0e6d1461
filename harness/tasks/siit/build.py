"""Train a program's model, check its ground truths by ablation, write its file
(``harness tasks train``); or retrain one and compare it with its file (``--check``).

Example:
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> path = train_files(["hist"], SiitSettings(steps=2, batch_size=4, eval_every=2), folder)[0]
    >>> payload = read_siit(path)
    >>> payload["steps"], sorted(payload["ground_truths"])
    (2, ['siit', 'tracr-resample'])
    >>> check_trained("hist", folder)
    (None, 'parameters bitwise identical')
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.engine.graph import EdgeGraph
from harness.tasks.siit.data import ALIGNED_GROUND_TRUTH, siit_data
from harness.tasks.siit.ground_truth import ablation_accuracy, trained_ground_truths
from harness.tasks.siit.training import SiitSettings, train_siit
from harness.tasks.siit.weight_files import read_siit, run_payload, siit_path, write_siit
from harness.tasks.tracr.build import payload_difference
from harness.tasks.tracr.compile import load_compiled


def trained_model(config: dict[str, Any], state_dict: dict[str, Any], device: Any = "cpu") -> Any:
    """A ``HookedTransformer`` with a trained model's config and parameters, in eval mode."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    model = HookedTransformer(HookedTransformerConfig(**config))
    model.load_state_dict(state_dict)
    return model.to(device, print_details=False).eval()


def train_payload(
    program: str,
    settings: SiitSettings,
    checkpoint: str | os.PathLike | None = None,
    progress: bool = False,
    on_measure: Callable[[int, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train ``program``'s model and return its file's plain data, ground truths checked."""
    compiled = load_compiled(program)
    data = siit_data(compiled, settings.seed, settings.train_fraction)
    run = train_siit(compiled, settings, checkpoint, progress, on_measure, data)
    model = trained_model(run.config, run.state_dict)
    truths = trained_ground_truths(
        EdgeGraph.from_config(model.cfg),
        run.alignment.circuit,
        data.tracr_circuits[ALIGNED_GROUND_TRUTH],
    )
    accuracy = {
        name: round(ablation_accuracy(model, data, edges), 6) for name, edges in truths.items()
    }
    return run_payload(program, run, settings, truths, accuracy)


def train_files(
    programs: list[str],
    settings: SiitSettings,
    directory: str | os.PathLike | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    progress: bool = False,
) -> list[Path]:
    """Train each program and write its file into ``directory`` (default: the package's);
    with ``checkpoint_dir``, a stopped training resumes from its checkpoint there."""
    paths = []
    for program in programs:
        checkpoint = (
            Path(checkpoint_dir) / f"siit-{program}.ckpt" if checkpoint_dir is not None else None
        )
        payload = train_payload(program, settings, checkpoint, progress)
        path = siit_path(program, directory)
        write_siit(payload, path)
        paths.append(path)
    return paths


PARAMETER_TOLERANCE = 1e-4
"""The largest parameter difference a retraining may show when it is not bitwise equal
(float rounding differs between CPUs), provided its metrics and ground truths are equal."""


def check_trained(
    program: str, directory: str | os.PathLike | None = None
) -> tuple[str | None, str]:
    """Retrain ``program`` with its file's settings for its file's steps and compare:
    ``(None, how)`` when the parameters are bitwise identical, or differ by at most
    :data:`PARAMETER_TOLERANCE` with the same metrics and ground truths; ``(what differs,
    "")`` otherwise."""
    stored = read_siit(siit_path(program, directory))
    settings = dict(stored["settings"])
    settings["betas"] = tuple(settings["betas"])
    settings["steps"] = stored["steps"]
    fresh = train_payload(program, SiitSettings(**settings))
    if fresh["ground_truths"] != stored["ground_truths"]:
        return "ground truths differ", ""
    where = payload_difference(stored["state_dict"], fresh["state_dict"])
    if where is None:
        return None, "parameters bitwise identical"
    largest = max(
        float((value.double() - fresh["state_dict"][k].double()).abs().max())
        for k, value in stored["state_dict"].items()
        if value.is_floating_point() and value.numel()
    )
    if json.loads(fresh["metrics"]) != stored["metrics"]:
        return f"parameter {where} differs (largest difference {largest:.3g}) and so do metrics", ""
    if largest > PARAMETER_TOLERANCE:
        return f"parameter {where} differs by up to {largest:.3g}", ""
    return None, f"parameters within {largest:.3g} (not bitwise), metrics and ground truths equal"
