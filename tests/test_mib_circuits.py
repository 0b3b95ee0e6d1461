"""MIB circuit files: the name map against MIB's own graph rules, round trips, bad files."""

from __future__ import annotations

import json

import pytest
import torch

from harness.cli import main
from harness.engine.prune_scores import PruneScores
from harness.interop.mib_files import (
    harness_edge_name,
    import_prune_scores,
    load_mib_file,
    mib_circuit,
    mib_edge_name,
    write_mib_circuit,
)


def mib_graph_edges(n_layers: int, n_heads: int) -> set[str]:
    """MIB's edge names, built from its graph's rules (not from ours): every node already
    in the residual stream feeds each head's q, k and v, then the layer's heads join the
    stream and everything feeds the layer's MLP, which joins it; all of it feeds logits."""
    stream, edges = ["input"], set()
    for layer in range(n_layers):
        heads = [f"a{layer}.h{h}" for h in range(n_heads)]
        edges |= {f"{src}->{head}<{x}>" for src in stream for head in heads for x in "qkv"}
        stream += heads
        edges |= {f"{src}->m{layer}" for src in stream}
        stream.append(f"m{layer}")
    edges |= {f"{src}->logits" for src in stream}
    return edges


@pytest.fixture(scope="module")
def gpt2_shaped():
    from harness.engine.patching import PatchableModel
    from harness.tasks.gpt2.models import GPT2_SMALL, load_model

    model, _, source = load_model(GPT2_SMALL, random_weights=True, device="cpu")
    assert source == "random"
    return PatchableModel.wrap(model)


@pytest.fixture(scope="module")
def reverse():
    from harness.tasks import load

    return load("tracr-reverse", device="cpu")


def _random_scores(patchable, seed=0) -> PruneScores:
    g = torch.Generator().manual_seed(seed)
    names = patchable.graph.edge_names
    return PruneScores(names, torch.randn(len(names), generator=g, dtype=torch.float64))


def test_gpt2_name_map_is_mibs_graph(gpt2_shaped):
    ours = gpt2_shaped.graph.edge_names
    mapped = {mib_edge_name(e) for e in ours}
    assert len(ours) == len(mapped) == 32491
    assert mapped == mib_graph_edges(12, 12)
    for name in ("input->a0.h0<q>", "a3.h0->logits", "m1->a2.h0<v>", "a11.h11->m11"):
        assert name in mapped
    assert all(mib_edge_name(harness_edge_name(m)) == m for m in mapped)


def test_gpt2_round_trip(gpt2_shaped, tmp_path):
    scores = _random_scores(gpt2_shaped)
    circuit = set(scores.top(100))
    path = tmp_path / "gpt2.json"
    write_mib_circuit(path, gpt2_shaped, scores, circuit)
    data = json.loads(path.read_text())
    assert set(data) == {"cfg", "nodes", "edges"}
    assert data["cfg"] == {
        "n_layers": 12,
        "n_heads": 12,
        "parallel_attn_mlp": False,
        "d_model": 768,
    }
    assert len(data["nodes"]) == 1 + 12 * 13 + 1
    assert sum(e["in_graph"] for e in data["edges"].values()) == 100
    back = import_prune_scores(gpt2_shaped, path=str(path))
    assert torch.equal(back.scores, scores.scores)  # JSON keeps float64 exactly
    assert back.circuit == frozenset(circuit)


def test_tracr_reverse_has_77_edges_and_10_nodes(reverse, tmp_path):
    patchable = reverse.patchable
    data = mib_circuit(patchable, _random_scores(patchable), reverse.official_edges("resample"))
    assert len(data["edges"]) == 77 and len(data["nodes"]) == 10
    assert set(data["edges"]) == mib_graph_edges(4, 1)
    in_graph = {n for n, v in data["nodes"].items() if v["in_graph"]}
    assert in_graph  # the nodes the official circuit touches
    path = tmp_path / "reverse.json"
    path.write_text(json.dumps(data))
    back = import_prune_scores(patchable, path=str(path))
    assert back.circuit == reverse.official_edges("resample")


def test_score_writes_then_reads_back_the_same_numbers(tmp_path, capsys):
    out = tmp_path / "acdc.json"
    argv = ["score", "--task", "tracr-reverse", "--device", "cpu"]
    assert main([*argv, "--algo", "eap", "--mib-out", str(out)]) == 0
    written = capsys.readouterr().out
    assert main([*argv, "--mib-in", str(out)]) == 0
    read = capsys.readouterr().out
    tables = [[ln for ln in text.splitlines() if ln.startswith(("resample", "acdc-zero", "MIB ("))]
              for text in (written, read)]  # fmt: skip
    assert tables[0] == tables[1] and len(tables[0]) == 3
    assert "CPR" in tables[0][2] and "signed" in tables[0][2] and "CMD" in tables[0][2]


def _bad_files(path, reverse_json):
    edges = reverse_json["edges"]
    first = next(iter(edges))
    yield "not JSON", "{oops", "not JSON"
    yield "no edges", json.dumps({"cfg": {}, "nodes": {}}), "it has no 'edges'"
    unknown = {**reverse_json, "edges": {**edges, "a9.h0->logits": {"score": 1.0}}}
    yield "unknown edge", json.dumps(unknown), "'a9.h0->logits' (A9.0->Resid End) is not in"
    bad_name = {**reverse_json, "edges": {**edges, "x->y": {"score": 1.0}}}
    yield "bad name", json.dumps(bad_name), "'x' is not an MIB node name"
    missing = {**reverse_json, "edges": dict(list(edges.items())[1:])}
    yield (
        "missing edge",
        json.dumps(missing),
        f"has 76 of the graph's 77 edges; missing 1, e.g. {first!r}",
    )
    shape = {**reverse_json, "cfg": {**reverse_json["cfg"], "n_layers": 12}}
    yield "other model", json.dumps(shape), "circuit of a model with 12 layers and 1 heads"
    nan = {**reverse_json, "edges": {**edges, first: {"score": float("nan"), "in_graph": False}}}
    yield "nan score", json.dumps(nan), "has a non-finite score nan"
    text = {**reverse_json, "edges": {**edges, first: {"score": "high"}}}
    yield "text score", json.dumps(text), "has no numeric 'score'"


def test_bad_mib_files_are_one_line_exit_2(reverse, tmp_path, capsys):
    good = mib_circuit(reverse.patchable, _random_scores(reverse.patchable))
    argv = ["score", "--task", "tracr-reverse", "--device", "cpu", "--mib-in"]
    for what, text, message in _bad_files(tmp_path, good):
        path = tmp_path / f"{what}.json"
        path.write_text(text)
        assert main([*argv, str(path)]) == 2, what
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("harness: error: "), (what, err)
        assert message in err, (what, err)
    assert main([*argv, str(tmp_path / "absent.json")]) == 2
    assert "No such file or directory" in capsys.readouterr().err
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(good))
    assert main([*argv, str(path), "--algo", "sp"]) == 2
    assert "--mib-in scores a file: give no --algo" in capsys.readouterr().err
    assert main(["score", "--task", "tracr-reverse"]) == 2
    assert "give --algo ALGORITHM, or --mib-in FILE" in capsys.readouterr().err


def test_load_refuses_in_graph_that_is_not_boolean(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(
        json.dumps(
            {"cfg": {}, "nodes": {}, "edges": {"input->logits": {"score": 1, "in_graph": 1}}}
        )
    )
    with pytest.raises(ValueError, match="'in_graph' that is not true/false"):
        load_mib_file(path)
