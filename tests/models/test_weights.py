import collections

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from kdrestore.models.common import PadToMultiple, crop_to, pad_to_multiple
from kdrestore.models.weights import WeightsError, load_weights, read_state_dict


class Evil:
    def __reduce__(self):
        return (print, ("unpickled!",))


def _net():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 1, 3))


def test_reads_pth_nested_and_safetensors(tmp_path):
    net = _net()
    torch.save({"state_dict": net.state_dict()}, tmp_path / "a.pth")
    save_file(net.state_dict(), str(tmp_path / "a.safetensors"))
    for name in ("a.pth", "a.safetensors"):
        other = _net()
        assert load_weights(other, tmp_path / name).ok
        assert torch.equal(other[0].weight, net[0].weight)


def test_untrusted_pickle_and_corrupt_files_are_refused(tmp_path):
    torch.save({"w": Evil()}, tmp_path / "evil.pth")
    (tmp_path / "junk.pth").write_bytes(b"\x00not a checkpoint")
    for name in ("evil.pth", "junk.pth"):
        with pytest.raises(WeightsError, match=name):
            read_state_dict(tmp_path / name)
    with pytest.raises(WeightsError, match="not found"):
        read_state_dict(tmp_path / "missing.pth")


def test_mismatch_lists_keys_by_name(tmp_path):
    sd = collections.OrderedDict(_net().state_dict())
    sd["extra.weight"] = torch.zeros(1)
    sd.pop("2.bias")
    sd["0.weight"] = torch.zeros(5, 1, 3, 3)
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(WeightsError) as info:
        load_weights(_net(), tmp_path / "bad.pth")
    msg = str(info.value)
    assert "missing (1): 2.bias" in msg and "unexpected (1): extra.weight" in msg and "0.weight (5, 1, 3, 3)" in msg
    report = load_weights(_net(), tmp_path / "bad.pth", strict=False)
    assert report.missing == ["2.bias"]


@pytest.mark.parametrize("size", [(17, 23), (3, 5), (16, 16)])
def test_pad_to_multiple_and_crop_back(size):
    x = torch.rand(1, 2, *size)
    xp, orig = pad_to_multiple(x, 8)
    assert xp.shape[-2] % 8 == 0 and xp.shape[-1] % 8 == 0 and orig == size
    assert torch.equal(crop_to(xp, orig), x)
    body = nn.Sequential(nn.Conv2d(2, 2, 3, stride=4, padding=1), nn.Upsample(scale_factor=4))
    assert PadToMultiple(body, 4)(x).shape == x.shape
