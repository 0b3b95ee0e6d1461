"""Tiny random models in float64: the fixtures every exactness test builds on."""

from __future__ import annotations

import os
import warnings

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
warnings.filterwarnings("ignore", category=DeprecationWarning)


def random_model(seed: int = 0, dtype=torch.float64, **overrides):
    """A HookedTransformer with random, non-trivial weights (biases included)."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    config = dict(
        n_layers=3,
        n_heads=4,
        d_model=32,
        d_head=8,
        d_mlp=64,
        n_ctx=8,
        d_vocab=20,
        act_fn="gelu",
        normalization_type="LN",
        dtype=dtype,
        seed=seed,
    )
    config.update(overrides)
    model = HookedTransformer(HookedTransformerConfig(**config))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(0.3 * torch.randn(param.shape, generator=generator, dtype=dtype))
    return model


MODEL_VARIANTS = {
    "mlp": {},
    "attn_only": {"attn_only": True},
    "parallel": {"parallel_attn_mlp": True},
    "rms_rotary": {
        "normalization_type": "RMS",
        "positional_embedding_type": "rotary",
        "rotary_dim": 8,
    },
    "gqa_gated": {
        "n_key_value_heads": 2,
        "gated_mlp": True,
        "act_fn": "silu",
        "normalization_type": "RMS",
    },
    "no_norm": {"normalization_type": None},
}


@pytest.fixture(params=list(MODEL_VARIANTS))
def any_model(request):
    return random_model(**MODEL_VARIANTS[request.param])


@pytest.fixture
def model():
    return random_model()


@pytest.fixture
def token_pair():
    generator = torch.Generator().manual_seed(1)
    clean = torch.randint(0, 20, (4, 6), generator=generator)
    corrupt = torch.randint(0, 20, (4, 6), generator=generator)
    return clean, corrupt


@pytest.fixture(scope="session")
def planted():
    from harness.testing.planted import planted_circuit

    return planted_circuit()


@pytest.fixture(scope="session")
def usable_browser(tmp_path_factory):
    """The browser kaleido renders with, checked by rendering one small figure; skips the
    test, with the reason, where there is none that works (``make test`` installs Debian's
    chromium when run as root)."""
    import plotly.graph_objects as go

    from harness.reporting.static_export import StaticJob, find_browser, render_static

    browser, why = find_browser()
    if browser is None:
        pytest.skip(f"no usable browser for static figures: {why}")
    out = tmp_path_factory.mktemp("probe")
    (out / "probe.json").write_text(go.Figure(go.Scatter(y=[1, 2])).to_json())
    result = render_static([StaticJob(out / "probe.json", out / "probe.png", "png")])
    if result.error is not None:
        pytest.skip(f"no usable browser for static figures: {result.error}")
    return browser
