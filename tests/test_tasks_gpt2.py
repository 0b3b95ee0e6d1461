"""IOI, Greater-Than and Docstring: official circuits, datasets, model loading, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from harness.engine.graph import EdgeGraph
from harness.tasks import load, task_specs
from harness.tasks.gpt2 import circuits
from harness.tasks.gpt2.models import GPT2_SMALL, ModelSpec, load_model
from harness.tasks.gpt2.prompts import (
    docstring_prompt,
    docstring_prompts,
    greaterthan_prompts,
    greaterthan_years,
    ioi_prompts,
    to_batches,
)
from harness.tasks.gpt2.tokenizer import gpt2_tokenizer

SHARED_CIRCUITS = Path(__file__).resolve().parents[2] / "shared" / "circuits"
COUNTS = {
    ("ioi", "autocircuit"): 739,
    ("ioi", "acdc"): 963,
    ("greaterthan", "autocircuit"): 235,
    ("greaterthan", "acdc"): 235,
    ("docstring", "autocircuit"): 24,
    ("docstring", "acdc"): 24,
}


@pytest.fixture(scope="module")
def tokenizer():
    return gpt2_tokenizer()


@pytest.fixture(scope="module")
def graphs():
    from transformer_lens import HookedTransformerConfig

    shapes = {
        "gpt2": dict(n_layers=12, n_heads=12, d_model=768, d_head=64, d_mlp=3072),
        "attn-only-4l": dict(n_layers=4, n_heads=8, d_model=512, d_head=64, attn_only=True),
    }
    return {
        name: EdgeGraph.from_config(HookedTransformerConfig(n_ctx=8, d_vocab=10, **shape))
        for name, shape in shapes.items()
    }


# --- official circuits --------------------------------------------------------------------


@pytest.mark.parametrize(("task", "variant"), list(COUNTS))
def test_official_circuit_counts_and_validity(task, variant, graphs):
    edges = circuits.official_circuits(task)[variant]
    graph = graphs["attn-only-4l" if task == "docstring" else "gpt2"]
    assert len(edges) == COUNTS[task, variant]
    assert graph.n_edges == (1281 if task == "docstring" else 32491)
    assert all(edge in graph for edge in edges)


@pytest.mark.skipif(not SHARED_CIRCUITS.is_dir(), reason="no ../shared/circuits to compare with")
@pytest.mark.parametrize(("task", "variant"), list(COUNTS))
def test_official_circuits_equal_reference_lists(task, variant):
    reference = json.loads((SHARED_CIRCUITS / f"{task}_{variant}.json").read_text())
    assert circuits.official_circuits(task)[variant] == frozenset(reference["edges"])


def test_ioi_autocircuit_is_a_strict_subset_of_acdc():
    assert circuits.ioi_edges("autocircuit") < circuits.ioi_edges("acdc")


# --- tokenizer and datasets (check values from the ACDC code) -----------------------------


def test_offline_gpt2_tokenizer(tokenizer):
    assert tokenizer.encode("Hello world") == [15496, 995]
    assert len(tokenizer) == 50257


def test_ioi_matches_acdc(tokenizer):
    prompts = ioi_prompts(3)
    assert [p.clean + p.answers[0] for p in prompts] == [
        "Then, Mary and Jeffrey went to the restaurant. Jeffrey gave a bone to Mary",
        "Then, Brittany and Jamie went to the garden. Jamie gave a necklace to Brittany",
        "Then, Christine and Amy went to the station. Amy gave a drink to Christine",
    ]
    assert [p.corrupt for p in prompts] == [
        "Then, Melissa and Nicole went to the restaurant. Anthony gave a bone to",
        "Then, Lauren and Alicia went to the garden. Daniel gave a necklace to",
        "Then, Thomas and Elizabeth went to the station. Jesse gave a drink to",
    ]
    assert prompts[0].wrong_answers == (" Jeffrey",)
    ids = tokenizer.encode(prompts[0].clean + prompts[0].answers[0])
    assert ids == [
        6423, 11, 5335, 290, 19627, 1816, 284, 262, 7072, 13, 19627, 2921, 257, 9970, 284, 5335
    ]  # fmt: skip


def test_greaterthan_matches_both_recipes(tokenizer):
    assert len(greaterthan_years(tokenizer)) == 604
    assert len(greaterthan_years(tokenizer, "autocircuit")) == 373
    prompts = greaterthan_prompts(3, tokenizer)
    assert [p.clean for p in prompts] == [
        "The demonstrations lasted from the year 1289 to 12",
        "The assaults lasted from the year 1537 to 15",
        "The affair lasted from the year 1282 to 12",
    ]
    ids = tokenizer.encode(prompts[0].clean)
    assert ids == [464, 18721, 15436, 422, 262, 614, 1105, 4531, 284, 1105]
    assert tokenizer.encode(prompts[0].corrupt)[7] == 486  # "01"
    assert prompts[0].answers[0] == "90" and prompts[0].wrong_answers[-1] == "89"
    first = greaterthan_prompts(1, tokenizer, recipe="autocircuit")[0]
    assert first.clean == "The demonstrations lasted from the year 1363 to 13"


def test_docstring_matches_acdc_names_and_corruption():
    # ACDC's description nouns are not reproduced; every name and argument is.
    prompt = docstring_prompt(0)
    assert prompt.clean.startswith("\ndef old(self, first, files, page, names, size, read):\n")
    assert prompt.corrupt.startswith("\ndef old(self, first, files, project, target, new, read):")
    assert "    :param page: " in prompt.clean and "    :param names: " in prompt.clean
    assert "    :param image: " in prompt.corrupt and "    :param update: " in prompt.corrupt
    assert prompt.clean.endswith("\n    :param") and prompt.answers == (" size",)
    assert len(prompt.wrong_answers) == 13 and " size" not in prompt.wrong_answers


def test_batches_pad_variable_answer_counts(tokenizer):
    prompts = greaterthan_prompts(5, tokenizer)
    (batch,) = to_batches(prompts, tokenizer, "gt", batch_size=5)
    n_right = [len(p.answers) for p in prompts]
    assert batch.answers.shape == (5, 1, max(n_right))
    assert [(row >= 0).sum().item() for row in batch.answers[:, 0]] == n_right
    both = torch.cat([batch.answers, batch.wrong_answers], dim=-1)[:, 0]
    assert [(row >= 0).sum().item() for row in both] == [100] * 5


def test_docstring_prompts_have_one_length(tokenizer):
    prompts = docstring_prompts(6, tokenizer)
    batches = to_batches(prompts, tokenizer, "ds", batch_size=6, prepend_bos=True)
    assert batches[0].clean.shape == batches[0].corrupt.shape
    assert batches[0].clean[0, 0].item() == tokenizer.bos_token_id


# --- models and tasks end to end ----------------------------------------------------------


def test_tasks_are_registered():
    specs = task_specs()
    for slug in ("ioi", "greaterthan", "docstring"):
        assert specs[slug].needs_weights and specs[slug].ground_truths[0] == "autocircuit"


def test_missing_weights_is_one_line_value_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HARNESS_MODEL_DIR", raising=False)
    monkeypatch.setattr("harness.tasks.gpt2.models._in_hub_cache", lambda repo: False)
    with pytest.raises(ValueError) as caught:
        load("ioi", n_train=2, n_test=2, device="cpu")
    message = str(caught.value)
    assert "\n" not in message and "--model-path" in message and "HARNESS_MODEL_DIR" in message
    error = caught.value  # no chained traceback under it
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


@pytest.mark.parametrize(
    ("slug", "seq_len", "n_edges"),
    [("ioi", 15, 32491), ("greaterthan", 10, 32491), ("docstring", 53, 1281)],
)
def test_task_end_to_end_with_random_weights(slug, seq_len, n_edges):
    task = load(slug, random_weights=True, n_train=3, n_test=2, batch_size=2, device="cpu")
    vocab = task.model.cfg.d_vocab
    assert [b.size for b in task.train] == [2, 1] and [b.size for b in task.test] == [2]
    for batch in (*task.train, *task.test):
        assert batch.clean.shape == batch.corrupt.shape and batch.clean.shape[1] == seq_len
        assert not torch.equal(batch.clean, batch.corrupt)
        for ids in (batch.answers, batch.wrong_answers):
            assert ((ids >= -1) & (ids < vocab)).all() and (ids[..., 0] >= 0).all()
    assert task.patchable.n_edges == n_edges
    assert task.official_edges() == circuits.official_circuits(slug)["autocircuit"]
    batch = task.train[0]
    with torch.no_grad():
        clean = task.model(batch.clean)  # [batch, seq, vocab]
        patched = task.patchable.run_patched(batch.clean, batch.corrupt, task.official_edges())
        unpatched = task.patchable.run_patched(batch.clean, batch.corrupt, [])
    assert patched.shape == (batch.size, seq_len, vocab)
    torch.testing.assert_close(unpatched, clean, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(patched, clean)


def test_local_huggingface_directory_loads_offline(tmp_path, tokenizer):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    hf_model = GPT2LMHeadModel(
        GPT2Config(n_layer=2, n_head=2, n_embd=16, n_positions=32, n_ctx=32, vocab_size=50257)
    ).eval()
    hf_model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    tiny = ModelSpec("tiny-gpt2", "tiny-gpt2", dict(n_layers=2, n_heads=2, d_model=16))
    model, loaded_tokenizer, source = load_model(tiny, model_path=tmp_path, device="cpu")
    assert source == str(tmp_path) and loaded_tokenizer.encode("Hello world") == [15496, 995]
    tokens = torch.tensor([tokenizer.encode("The year 1289 to 12")])  # [1, seq]
    with torch.no_grad():
        ours, theirs = model(tokens), hf_model(tokens).logits  # [1, seq, vocab]
    # transformer_lens centres the unembedding: compare log-probabilities.
    torch.testing.assert_close(ours.log_softmax(-1), theirs.log_softmax(-1), rtol=0, atol=1e-4)


def test_wrong_model_directory_shape_is_refused(tmp_path, tokenizer):
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(n_layer=1, n_head=2, n_embd=16, n_positions=8, n_ctx=8)
    GPT2LMHeadModel(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="shape"):
        load_model(GPT2_SMALL, model_path=tmp_path, device="cpu")
