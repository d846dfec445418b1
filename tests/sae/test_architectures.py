"""What each architecture computes: sparsity patterns, thresholds, sparse decode, folding, training pieces."""

from __future__ import annotations

import pytest
import torch

from saescope.errors import ConfigError, SaescopeError
from saescope.sae import ARCHITECTURES, SAEConfig
from saescope.sae.architectures import batch_topk, jumprelu, step
from saescope.train.trainer import remove_parallel_grad
from tests.sae.sae_testing import assert_close, random_sae


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_interface_shapes(architecture, x):
    sae = random_sae(architecture)
    assert sae.W_enc.shape == (16, 64) and sae.W_dec.shape == (64, 16)
    assert sae.b_dec.shape == (16,) and sae.d_in == 16 and sae.d_sae == 64
    acts = sae.encode(x)
    assert acts.shape == (32, 64) and (acts >= 0).all()
    assert sae.decode(acts).shape == (32, 16)
    assert_close(sae(x), sae.decode(sae.encode(x)), "forward == decode(encode)")
    # leading dimensions pass through: [batch, seq, d_in]
    assert sae(x.reshape(4, 8, 16)).shape == (4, 8, 16)


def test_standard_is_relu(x):
    sae = random_sae("standard")
    pre = (x - sae.b_dec) @ sae.W_enc + sae.b_enc
    assert_close(sae.encode(x), torch.relu(pre), "relu")


def test_topk_has_exactly_k_nonzeros(x):
    sae = random_sae("topk", k=7)
    with torch.no_grad():
        sae.b_enc.fill_(5.0)  # every pre-activation positive, so exactly k survive
    acts = sae.encode(x)
    assert ((acts != 0).sum(-1) == 7).all()
    pre = (x - sae.b_dec) @ sae.W_enc + sae.b_enc
    kth = pre.topk(7, dim=-1).values[:, -1:]
    assert ((acts != 0) == (pre >= kth)).all()  # the kept ones are the largest


def test_jumprelu_zeroes_below_threshold(x):
    sae = random_sae("jumprelu")
    pre = (x - sae.b_dec) @ sae.W_enc + sae.b_enc
    acts = sae.encode(x)
    assert (acts[pre <= sae.threshold] == 0).all()
    above = pre > sae.threshold
    assert_close(acts[above], pre[above], "kept as is")
    assert above.any() and (~above).any()


def test_gated_uses_gate_for_support_and_magnitude_for_size(x):
    sae = random_sae("gated")
    sae_in = x - sae.b_dec
    gate = sae_in @ sae.W_enc + sae.b_gate > 0
    magnitude = torch.relu(sae_in @ (sae.W_enc * sae.r_mag.exp()) + sae.b_mag)
    assert_close(sae.encode(x), gate * magnitude, "gated")


@pytest.mark.parametrize("architecture", ["batchtopk", "matryoshka_batchtopk"])
def test_batchtopk_inference_uses_global_threshold(architecture, x):
    sae = random_sae(architecture)
    pre = (x - sae.b_dec) @ sae.W_enc + sae.b_enc
    assert_close(sae.encode(x), torch.relu(pre) * (pre > 0.2), "global threshold 0.2")
    # training picks k * n_tokens over the whole batch, so tokens differ in L0 but average k
    acts = sae.training_encode(x)
    assert int((acts > 0).sum()) == sae.cfg.k * 32
    assert len(set((acts > 0).sum(-1).tolist())) > 1


def test_batch_topk_keeps_the_largest_of_the_batch():
    pre = torch.tensor([[5.0, 1.0, 0.0], [4.0, 3.0, -1.0]])
    assert torch.equal(batch_topk(pre, k=1), torch.tensor([[5.0, 0.0, 0.0], [4.0, 0.0, 0.0]]))
    assert torch.equal(
        batch_topk(pre, k=2), torch.tensor([[5.0, 1.0, 0.0], [4.0, 3.0, 0.0]])
    )  # 4 of 6


def test_batchtopk_threshold_update():
    sae = random_sae("batchtopk")
    sae.threshold.fill_(-1.0)  # untrained
    sae.update_threshold(torch.tensor([[0.0, 0.5, 2.0]]))
    assert float(sae.threshold) == pytest.approx(0.5)
    sae.update_threshold(torch.tensor([[1.5, 0.0]]), momentum=0.5)
    assert float(sae.threshold) == pytest.approx(1.0)


def test_batchtopk_to_jumprelu_is_the_same_function(x):
    sae = random_sae("batchtopk")
    as_jumprelu = sae.to_jumprelu()
    assert as_jumprelu.cfg.architecture == "jumprelu"
    assert_close(as_jumprelu(x), sae(x), "same outputs")


def test_matryoshka_prefix_reconstructions(x):
    sae = random_sae("matryoshka_batchtopk")
    acts = sae.encode(x)
    outs = sae.prefix_reconstructions(acts)
    assert len(outs) == 3
    assert_close(outs[-1], sae.decode(acts), "the full prefix is the whole SAE")
    first = acts[:, :16] @ sae.W_dec[:16] + sae.b_dec
    assert_close(outs[0], first, "first prefix uses its 16 features only")


@pytest.mark.parametrize("rescale", [False, True])
def test_sparse_decode_equals_dense(rescale, x):
    sae = random_sae("topk", rescale_acts_by_decoder_norm=rescale)
    values, indices = sae.encode_sparse(x)
    assert values.shape == indices.shape == (32, 5)
    dense = sae.encode(x)
    assert_close(torch.zeros_like(dense).scatter(-1, indices, values), dense, "encode_sparse")
    assert_close(sae.decode_sparse(values, indices), sae.decode(dense), "decode_sparse")
    values3, indices3 = sae.encode_sparse(x.reshape(4, 8, 16))
    assert sae.decode_sparse(values3, indices3).shape == (4, 8, 16)


@pytest.mark.parametrize("architecture", ["standard", "jumprelu", "gated"])
@pytest.mark.parametrize("transcoder", [False, True])
def test_fold_W_dec_norm_preserves_reconstructions(architecture, transcoder, x):
    kw = {"d_out": 24, "apply_b_dec_to_input": False, "skip_connection": True} if transcoder else {}
    sae = random_sae(architecture, **kw)
    before_out, before_acts = sae(x), sae.encode(x)
    norms = sae.W_dec.norm(dim=-1)
    sae.fold_W_dec_norm()
    assert_close(sae.W_dec.norm(dim=-1), torch.ones(64), "unit rows")
    assert_close(sae(x), before_out, "outputs unchanged")
    assert_close(sae.encode(x), before_acts * norms, "acts scaled by the norms")


def test_fold_W_dec_norm_topk_needs_rescaled_selection(x):
    sae = random_sae("topk")
    with pytest.raises(SaescopeError, match="rescale_acts_by_decoder_norm"):
        sae.fold_W_dec_norm()
    rescaled = random_sae("topk", rescale_acts_by_decoder_norm=True)
    before = rescaled(x)
    rescaled.fold_W_dec_norm()
    assert not rescaled.cfg.rescale_acts_by_decoder_norm
    assert_close(rescaled(x), before, "outputs unchanged")
    with pytest.raises(SaescopeError, match="to_jumprelu"):
        random_sae("batchtopk").fold_W_dec_norm()


def test_fold_W_dec_norm_topk_with_one_common_norm(x):
    """Trained SAEs fold the input scaling into W_dec: every row has the same norm, the same top k."""
    sae = random_sae("topk")
    with torch.no_grad():
        sae.W_dec.mul_(3.0 / sae.W_dec.norm(dim=-1, keepdim=True))
    before_acts, before = sae.encode(x), sae(x)
    sae.fold_W_dec_norm()
    assert torch.equal(sae.encode(x) != 0, before_acts != 0)
    assert_close(sae(x), before, "outputs unchanged")


@pytest.mark.parametrize("mode", ["constant_norm_rescale", "layer_norm", "constant_scale"])
def test_normalisation_is_undone_by_decode(mode, x):
    sae = random_sae("standard", normalize_activations=mode)
    sae.input_scale.fill_(0.25)
    with (
        torch.no_grad()
    ):  # an SAE that reconstructs perfectly: W_dec = W_enc^+ with every feature active
        sae.W_enc.copy_(torch.eye(16, 64))
        sae.W_dec.copy_(torch.eye(64, 16))
        sae.b_enc.fill_(100.0)
        sae.W_dec[:16].copy_(torch.eye(16))
    target = x + sae.b_enc[:16] * (1 / 0.25 if mode == "constant_scale" else 1)
    if mode == "constant_scale":
        assert_close(sae(x), target, "x * s decoded back / s")
    normed, _ = sae.normalize_input(x)
    expected = {
        "constant_norm_rescale": x * 4 / x.norm(dim=-1, keepdim=True),
        "layer_norm": (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + 1e-5),
        "constant_scale": x * 0.25,
    }[mode]
    assert_close(normed, expected, "normalised input")
    # decode(encode(x)) with an identity-like SAE: the normalised input comes back in input units
    plain = random_sae("standard", normalize_activations=mode)
    plain.input_scale.fill_(0.25)
    acts = plain.encode(x)
    assert_close(plain.decode(acts), plain(x), "decode uses the statistics of the last encode")


def test_fold_input_scale_keeps_outputs(x):
    for architecture in ("standard", "jumprelu", "topk", "gated"):
        sae = random_sae(architecture, normalize_activations="constant_scale")
        sae.input_scale.fill_(0.3)
        before_acts, before_out = sae.encode(x), sae(x)
        sae.fold_input_scale()
        assert sae.cfg.normalize_activations == "none"
        assert_close(sae.encode(x), before_acts, f"{architecture} acts")
        assert_close(sae(x), before_out, f"{architecture} outputs")


def test_decode_without_encode_needs_statistics():
    sae = random_sae("standard", normalize_activations="layer_norm")
    with pytest.raises(SaescopeError, match="call encode first"):
        sae.decode(torch.zeros(2, 64))


def test_jumprelu_straight_through_gradients():
    x = torch.tensor([0.05, 0.5, 1.0, 0.0995])
    threshold = torch.full((4,), 0.1, requires_grad=True)
    out = jumprelu(x.clone().requires_grad_(), threshold, bandwidth=0.01)
    assert torch.equal(out.detach(), torch.tensor([0.0, 0.5, 1.0, 0.0]))
    out.sum().backward()
    # only inputs within bandwidth/2 of the threshold give the threshold a gradient: -threshold/bandwidth
    assert torch.allclose(threshold.grad, torch.tensor([0.0, 0.0, 0.0, -10.0]))
    threshold.grad = None
    step(x, threshold, bandwidth=0.01).sum().backward()
    assert torch.allclose(threshold.grad, torch.tensor([0.0, 0.0, 0.0, -100.0]))
    # batched input: the gradient sums back to the threshold's shape
    batch = torch.rand(8, 4)
    threshold.grad = None
    jumprelu(batch, threshold).sum().backward()
    assert threshold.grad.shape == (4,)


def test_W_dec_unit_norm_helpers():
    sae = random_sae("standard")
    sae.set_W_dec_unit_norm()
    assert_close(sae.W_dec.norm(dim=-1), torch.ones(64), "unit norm")
    sae.W_dec.grad = torch.randn_like(sae.W_dec)
    remove_parallel_grad(sae.W_dec)  # what the trainer does between backward and step
    assert_close((sae.W_dec.grad * sae.W_dec).sum(-1), torch.zeros(64), "no parallel component")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"architecture": "relu2"}, "architecture"),
        ({"d_sae": 0}, "d_sae"),
        ({"architecture": "topk"}, "k"),
        ({"architecture": "topk", "k": 65}, "k"),
        (
            {"architecture": "matryoshka_batchtopk", "k": 4, "matryoshka_widths": [32, 16, 64]},
            "matryoshka_widths",
        ),
        ({"normalize_activations": "rms"}, "normalize_activations"),
        ({"d_out": 8}, "apply_b_dec_to_input"),
    ],
)
def test_bad_config_names_the_field(changes, field):
    with pytest.raises(ConfigError) as err:
        SAEConfig(**{"architecture": "standard", "d_in": 16, "d_sae": 64, **changes})
    assert err.value.field == field


def test_sparse_decode_gradients_match_dense(x):
    # training uses decode_sparse: its gradients for W_dec and the values must be the dense ones
    sae = random_sae("topk")
    values, indices = sae.encode_sparse(x)
    values = values.detach().requires_grad_()
    sae.decode_sparse(values, indices).pow(2).sum().backward()
    sparse_W_dec_grad, values_grad = sae.W_dec.grad.clone(), values.grad.clone()
    sae.W_dec.grad = None
    dense = torch.zeros(32, 64).scatter(-1, indices, values.detach()).requires_grad_()
    sae.decode(dense).pow(2).sum().backward()
    assert_close(sparse_W_dec_grad, sae.W_dec.grad, "W_dec grad")
    assert_close(values_grad, dense.grad.gather(-1, indices), "values grad")
