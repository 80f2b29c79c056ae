"""Shapes, gradients, identity initialisation and bad-shape errors of the networks and losses."""

from __future__ import annotations

import pytest
import torch

from inference.losses import WeakSupervisionLoss, segmentation_loss
from inference.networks import RERN, AttentionUNet2D, localnet_create
from tests.inference.synthetic import ball

torch.set_num_threads(1)


@pytest.mark.parametrize("size", [(160, 160), (118, 88), (37, 21)])
def test_attention_unet_shapes_and_gradients(size):
    net = AttentionUNet2D(channels=(4, 8, 16))
    x = torch.randn(2, 1, *size, requires_grad=True)
    y = net(x)
    assert y.shape == (2, 1, *size)
    y.mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_attention_unet_bad_shape_message():
    net = AttentionUNet2D(channels=(4, 8))
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\).*\(1, 3, 16, 16\)"):
        net(torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match="channels"):
        AttentionUNet2D(channels=(4,))


@pytest.mark.parametrize("shape", [(16, 24, 16), (21, 30, 17)])
def test_rern_shape_identity_and_gradients(shape):
    net = RERN(channels=(4, 8, 16))
    x = torch.randn(1, 2, *shape)
    ddf = net(x)
    assert ddf.shape == (1, 3, *shape)
    # zero-initialised head: an untrained RERN is the identity transform
    assert torch.count_nonzero(ddf) == 0
    ddf.pow(2).sum().backward()
    assert net.head.weight.grad is not None
    # after one nudge of the head the output depends on the input
    with torch.no_grad():
        net.head.weight.add_(0.01)
    assert net(x).abs().sum() > 0


def test_rern_bad_shape_message():
    with pytest.raises(ValueError, match=r"\(B, 2, X, Y, Z\).*\(1, 1, 8, 8, 8\)"):
        RERN(channels=(4, 8))(torch.zeros(1, 1, 8, 8, 8))
    with pytest.raises(ValueError, match="norm"):
        RERN(channels=(4, 8), norm="group")


def test_localnet_any_size_and_identity():
    net = localnet_create(num_channel_initial=4, extract_levels=(0, 1, 2))
    ddf = net(torch.randn(1, 2, 13, 18, 11))
    assert ddf.shape == (1, 3, 13, 18, 11)
    assert torch.count_nonzero(ddf) == 0
    with pytest.raises(ValueError, match="LocalNet expects"):
        net(torch.zeros(1, 2, 8, 8))


def test_weak_supervision_loss_prefers_the_aligning_field():
    shape = (24, 24, 24)
    fixed = torch.from_numpy(ball(shape, (12, 12, 12), 6)).float()[None, None]
    moving = torch.from_numpy(ball(shape, (12, 12, 15), 6)).float()[None, None]
    loss = WeakSupervisionLoss(bending_weight=0.1)
    zero = torch.zeros(1, 3, *shape)
    aligning = zero.clone()
    aligning[:, 2] = 3.0  # warped(p) = moving(p + 3 e_z)
    assert loss(aligning, moving, fixed)["loss"] < loss(zero, moving, fixed)["loss"] - 0.2
    assert loss(aligning, moving, fixed)["dice"] < 0.05
    wiggly = torch.randn(1, 3, *shape)
    assert loss(wiggly, fixed, fixed)["bending"] > loss(zero, fixed, fixed)["bending"]


def test_weak_supervision_loss_gradient_and_shape_errors():
    shape = (16, 16, 16)
    lab = torch.from_numpy(ball(shape, (8, 8, 8), 4)).float()[None, None]
    ddf = torch.zeros(1, 3, *shape, requires_grad=True)
    WeakSupervisionLoss()(ddf, torch.roll(lab, 2, dims=4), lab)["loss"].backward()
    assert ddf.grad is not None and ddf.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"ddf must have shape"):
        WeakSupervisionLoss()(torch.zeros(1, 2, *shape), lab, lab)
    with pytest.raises(ValueError, match=r"same shape"):
        WeakSupervisionLoss()(torch.zeros(1, 3, *shape), lab, lab[..., :8])


def test_segmentation_loss_lower_for_correct_logits():
    target = torch.zeros(1, 1, 16, 16)
    target[..., 4:12, 4:12] = 1
    good = (target * 2 - 1) * 5
    assert segmentation_loss(good, target) < segmentation_loss(-good, target)
    with pytest.raises(ValueError, match="must match"):
        segmentation_loss(good, target[..., :8])
