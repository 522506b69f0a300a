"""NAFNet growth (``init_grow``): a checkpoint with fewer blocks per level loads into a deeper NAFNet as the
same function, and without the option the missing blocks are refused by name."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from kdrestore.errors import KdrestoreError
from kdrestore.models.nafnet import NAFNet
from kdrestore.models.weights import WeightsError, load_weights

SMALL = dict(width=8, enc_blocks=(1, 1), middle_blocks=1, dec_blocks=(1, 1))
DEEP = dict(width=8, enc_blocks=(1, 3), middle_blocks=3, dec_blocks=(2, 1))


def _trained_small(tmp_path):
    torch.manual_seed(0)
    small = NAFNet(**SMALL)
    with torch.no_grad():  # non-zero scales, so every block of the small network does something
        for name, p in small.named_parameters():
            if name.endswith(("beta", "gamma")):
                p.uniform_(0.2, 0.5)
    path = tmp_path / "small.safetensors"
    save_file({k: v.contiguous() for k, v in small.state_dict().items()}, str(path))
    return small.eval(), path


def test_grown_network_starts_as_the_same_function(tmp_path):
    small, path = _trained_small(tmp_path)
    torch.manual_seed(1)
    deep = NAFNet(**DEEP, init_grow=True)
    load_weights(deep, path)
    x = torch.rand(2, 3, 20, 28)
    with torch.no_grad():
        assert torch.allclose(small(x), deep.eval()(x), atol=1e-6)
    # the added blocks are trainable: their scales get a gradient
    deep.train()
    deep(x).mean().backward()
    assert deep.middle_blks[2].beta.grad.abs().sum() > 0


def test_without_init_grow_the_missing_blocks_are_named(tmp_path):
    _, path = _trained_small(tmp_path)
    with pytest.raises(WeightsError, match=r"encoders\.1\.1\.beta.*init_grow: true"):
        load_weights(NAFNet(**DEEP), path)


def test_growing_cannot_invent_a_level(tmp_path):
    _, path = _trained_small(tmp_path)
    with pytest.raises((KdrestoreError, WeightsError)):
        load_weights(NAFNet(width=8, enc_blocks=(1, 1, 1), middle_blocks=1, dec_blocks=(1, 1, 1), init_grow=True),
                     path)
