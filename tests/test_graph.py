import pytest
from transformer_lens import HookedTransformerConfig

from harness.engine.graph import RESID_END, RESID_START, EdgeGraph


def config(n_layers, n_heads, d_model=64, attn_only=False, **kw):
    return HookedTransformerConfig(
        n_layers=n_layers,
        n_heads=n_heads,
        d_model=d_model,
        d_head=d_model // n_heads,
        d_mlp=None if attn_only else 4 * d_model,
        n_ctx=8,
        d_vocab=10,
        attn_only=attn_only,
        act_fn="gelu",
        **kw,
    )


def closed_form(n_layers, n_heads, mlp=True):
    """The edge counts of ../shared/circuits/README.md, in closed form."""
    h = n_heads
    if mlp:
        return (
            3 * h * sum(1 + k * (h + 1) for k in range(n_layers))
            + sum(1 + k * (h + 1) + h for k in range(n_layers))
            + 1
            + n_layers * (h + 1)
        )
    return 3 * h * sum(1 + k * h for k in range(n_layers)) + 1 + n_layers * h


@pytest.mark.parametrize(
    ("layers", "heads", "d_model", "attn_only", "separate_qkv", "expected"),
    [
        (12, 12, 768, False, True, 32491),  # GPT-2 small
        (12, 12, 768, False, False, 11611),
        (4, 8, 512, True, True, 1281),  # attn-only-4l
        (4, 1, 41, False, True, 77),  # tracr-reverse shape
        (2, 1, 41, False, True, 23),  # tracr-proportion shape
    ],
)
def test_edge_counts(layers, heads, d_model, attn_only, separate_qkv, expected):
    graph = EdgeGraph.from_config(config(layers, heads, d_model, attn_only), separate_qkv)
    assert graph.n_edges == expected
    assert len(set(graph.edge_names)) == expected
    if separate_qkv:
        assert expected == closed_form(layers, heads, mlp=not attn_only)


def test_gpt2_node_counts():
    graph = EdgeGraph.from_config(config(12, 12, 768))
    assert (graph.n_sources, len(graph.destinations)) == (157, 445)


def test_every_source_feeds_every_later_destination():
    graph = EdgeGraph.from_config(config(3, 2, 16))
    names = set(graph.edge_names)
    assert "Resid Start->A0.1.K" in names
    assert "A0.1->MLP 0" in names  # an MLP reads its own block's heads
    assert "A1.0->A1.1.Q" not in names  # heads of one layer do not feed each other
    assert "MLP 1->A1.0.V" not in names
    assert "MLP 2->Resid End" in names and f"{RESID_START}->{RESID_END}" in names
    for edge in graph.edges:
        assert edge.src.layer <= edge.dest.layer
        assert graph.edge(edge.name) is edge


def test_parallel_blocks_mlp_skips_own_heads():
    graph = EdgeGraph.from_config(config(2, 2, 16, parallel_attn_mlp=True))
    names = set(graph.edge_names)
    assert "A0.1->MLP 0" not in names and "A0.1->MLP 1" in names
    assert "MLP 0->A1.0.Q" in names


def test_combined_attention_destinations():
    graph = EdgeGraph.from_config(config(2, 2, 16), separate_qkv=False)
    assert "Resid Start->A1.0" in graph and "Resid Start->A1.0.Q" not in graph


def test_destination_groups_are_contiguous_row_major_blocks():
    graph = EdgeGraph.from_config(config(3, 4, 32))
    offset = 0
    for group in graph.destination_groups:
        assert group.edge_offset == offset
        for row, dest in enumerate(group.nodes):
            for col in range(group.n_upstream):
                edge = graph.edges[offset + row * group.n_upstream + col]
                assert edge.dest == dest and edge.src == graph.sources[col]
        offset += group.n_edges
    assert offset == graph.n_edges


def test_grouped_query_attention_has_fewer_key_value_destinations():
    graph = EdgeGraph.from_config(config(2, 4, 32, n_key_value_heads=2))
    assert "A1.3.Q" in {d.name for d in graph.destinations}
    assert "A1.1.K" in {d.name for d in graph.destinations}
    assert "A1.2.K" not in {d.name for d in graph.destinations}


def test_unknown_edge_suggests_close_names():
    graph = EdgeGraph.from_config(config(2, 2, 16))
    with pytest.raises(ValueError, match="did you mean 'A0.1->A1.0.Q'"):
        graph.edge("A0.1->A1.0.q")
