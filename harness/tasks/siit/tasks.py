"""Trained tracr tasks, ``siit-<program>``: a model trained with SIIT to implement the
program's circuit (shipped in the package), on the same prompts as ``tracr-<program>``.

Loading reads the file only (no training). Ground truths: ``siit`` (the circuit's
node-induced edges, the default) and ``tracr-resample`` (tracr's resample edges mapped by
name); see :mod:`harness.tasks.siit.ground_truth`. The model computes the program only as
well as it was trained: its accuracy and each ground truth's accuracy under ablation are in
``task.info``.

Example:
    >>> spec = siit_task_spec("hist")
    >>> spec.slug, spec.ground_truths
    ('siit-hist', ('siit', 'tracr-resample'))
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from harness.engine.device import resolve_device
from harness.engine.graph import EdgeGraph
from harness.tasks.base import Task, TaskSpec
from harness.tasks.siit.build import trained_model
from harness.tasks.siit.ground_truth import MAPPED_RESAMPLE, NODE_INDUCED
from harness.tasks.siit.interpbench import export_interpbench, read_interpbench
from harness.tasks.siit.sizing import parameter_count
from harness.tasks.siit.weight_files import read_siit, shipped_programs, siit_path
from harness.tasks.tracr.compile import load_compiled
from harness.tasks.tracr.data import check_options, make_splits
from harness.tasks.tracr.programs import all_programs

GROUND_TRUTHS = (NODE_INDUCED, MAPPED_RESAMPLE)


def load_siit_task(
    program: str,
    seed: int = 0,
    n_examples: int | None = None,
    batch_size: int | None = None,
    device: str | torch.device = "auto",
    n_validation: int | None = None,
    weights_dir: str | os.PathLike | None = None,
) -> Task:
    """The trained model of ``program`` with ``tracr-<program>``'s prompts (same options)
    and its two ground truths; ``weights_dir``: a folder of trained-model files other than
    the package's."""
    path = siit_path(program, weights_dir)
    if not path.is_file():
        raise ValueError(f"no trained model of tracr-{program} at {path} (harness tasks train)")
    stored = read_siit(path)
    target = resolve_device(device)
    model = trained_model(stored["config"], stored["state_dict"], target)
    compiled = load_compiled(program)
    splits = make_splits(compiled, seed, n_examples, n_validation, batch_size)
    numerical = all_programs()[program].numerical
    metrics = stored["metrics"]
    info: dict[str, Any] = {
        "program": program,
        "trained": {
            "layers": model.cfg.n_layers,
            "heads": model.cfg.n_heads,
            "d_model": model.cfg.d_model,
            "parameters": parameter_count(model),
            "steps": stored["steps"],
            "seconds": stored["seconds"],
            "settings": stored["settings"],
            "file": str(path),
        },
        "metrics": {k: metrics[k] for k in ("accuracy", "iia", "strict", "joint")},
        "alignment": list(stored["alignment"].circuit),
        "output_positions": list(splits.train[0].output_positions),
        "ground_truths": {
            name: {
                "n_edges": len(edges),
                "ablation_accuracy": stored["ablation_accuracy"][name],
                "source": (
                    "the aligned nodes' node-induced edges (what SIIT enforces)"
                    if name == NODE_INDUCED
                    else "tracr's resample ground truth, mapped by name"
                ),
            }
            for name, edges in stored["ground_truths"].items()
        },
    }
    return Task(
        slug=f"siit-{program}",
        model=model,
        train=tuple(b.to(target) for b in splits.train),
        test=tuple(b.to(target) for b in splits.test),
        validation=tuple(b.to(target) for b in splits.validation),
        circuits={name: frozenset(edges) for name, edges in stored["ground_truths"].items()},
        default_ground_truth=NODE_INDUCED,
        faithfulness_target="mse" if numerical else "kl_div",
        info=info,
    )


def _loader(program: str) -> Callable[..., Task]:
    def load(
        seed: int = 0,
        n_examples: int | None = None,
        batch_size: int | None = None,
        device: str | torch.device = "auto",
        n_validation: int | None = None,
        weights_dir: str | os.PathLike | None = None,
    ) -> Task:
        return load_siit_task(
            program, seed, n_examples, batch_size, device, n_validation, weights_dir
        )

    load.__name__ = load.__qualname__ = f"load_siit_{program.replace('-', '_')}"
    load.__doc__ = f"``siit-{program}``; options as :func:`load_siit_task`."
    return load


def _summary(program: str) -> dict[str, Any]:
    from transformer_lens import HookedTransformerConfig

    stored = read_siit(siit_path(program))
    graph = EdgeGraph.from_config(HookedTransformerConfig(**stored["config"]))
    return {
        "layers": stored["config"]["n_layers"],
        "heads": stored["config"]["n_heads"],
        "edges": graph.n_edges,
        "circuits": {name: len(edges) for name, edges in stored["ground_truths"].items()},
    }


def siit_task_spec(program: str) -> TaskSpec:
    """The registry entry of ``program``'s trained model, ``siit-<program>``."""
    spec = all_programs()[program]
    kind = "numerical" if spec.numerical else "categorical"
    return TaskSpec(
        slug=f"siit-{program}",
        label=f"siit {program}",
        loader=_loader(program),
        ground_truths=GROUND_TRUTHS,
        needs_weights=False,
        description=f"trained (SIIT) to implement tracr-{program}'s circuit ({kind})",
        numerical_output=spec.numerical,
        summary=lambda program=program: _summary(program),
        check_options=lambda options, program=program: check_options(program, options),
    )


def siit_task_specs() -> tuple[TaskSpec, ...]:
    """A spec for every trained model shipped in the package, and ``interpbench`` (a local
    case folder)."""
    return (*(siit_task_spec(program) for program in shipped_programs()), INTERPBENCH_SPEC)


def load_interpbench_task(
    path: str | os.PathLike,
    program: str | None = None,
    seed: int = 0,
    n_examples: int | None = None,
    batch_size: int | None = None,
    device: str | torch.device = "auto",
    n_validation: int | None = None,
) -> Task:
    """A local InterpBench case directory (:mod:`harness.tasks.siit.interpbench`) as a
    task: its model, its ``edges.pkl`` as the ground truth ``interpbench``, and the prompts
    of the tracr program it implements (``program``, else ``meta.json``'s ``program``)."""
    case = read_interpbench(path)
    program = program or case["meta"].get("program")
    programs = all_programs()
    if program not in programs:
        raise ValueError(
            f"{path}: name the tracr program this case implements (task_options.program; "
            f"known: {', '.join(programs)}), got {program!r}"
        )
    compiled = load_compiled(program)
    for key in ("d_vocab", "d_vocab_out", "n_ctx"):
        if case["config"].get(key) != compiled.config[key]:
            raise ValueError(
                f"{path}: {key} {case['config'].get(key)} does not fit tracr-{program}'s "
                f"prompts ({compiled.config[key]})"
            )
    target = resolve_device(device)
    try:
        model = trained_model(case["config"], case["state_dict"], target)
    except (RuntimeError, TypeError) as error:
        first = str(error).splitlines()[0]
        raise ValueError(f"{path}: the weights do not fit the config ({first})") from None
    splits = make_splits(compiled, seed, n_examples, n_validation, batch_size)
    return Task(
        slug="interpbench",
        model=model,
        train=tuple(b.to(target) for b in splits.train),
        test=tuple(b.to(target) for b in splits.test),
        validation=tuple(b.to(target) for b in splits.validation),
        circuits={"interpbench": frozenset(case["edges"])},
        default_ground_truth="interpbench",
        faithfulness_target="mse" if programs[program].numerical else "kl_div",
        info={"path": str(path), "program": program, "meta": case["meta"]},
    )


INTERPBENCH_SPEC = TaskSpec(
    slug="interpbench",
    label="interpbench",
    loader=load_interpbench_task,
    ground_truths=("interpbench",),
    needs_weights=True,
    description="a local InterpBench case folder (task_options: path, program)",
)


def export_siit_interpbench(
    program: str, directory: str | os.PathLike, weights_dir: str | os.PathLike | None = None
) -> Path:
    """Write ``siit-<program>``'s trained model as an InterpBench case directory (its
    ``siit`` ground truth as ``edges.pkl``)."""
    stored = read_siit(siit_path(program, weights_dir))
    meta = {
        "program": program,
        "exported_by": "circuit-harness",
        "ground_truth": "siit (node-induced edges of the aligned nodes)",
        "metrics": {k: stored["metrics"][k] for k in ("accuracy", "iia", "strict", "joint")},
        "training": {
            "steps": stored["steps"],
            "seconds": stored["seconds"],
            "settings": stored["settings"],
        },
    }
    edges = stored["ground_truths"]["siit"]
    return export_interpbench(directory, stored["config"], stored["state_dict"], edges, meta)
