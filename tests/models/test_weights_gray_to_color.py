"""Gray -> RGB weight inflation: a colour image of three equal channels is restored like the gray image."""
import pytest
import torch

from kdrestore.errors import KdrestoreError
from kdrestore.models.registry import build_model
from kdrestore.models.weights import gray_to_color


def test_equal_channels_restore_like_gray() -> None:
    torch.manual_seed(0)
    gray = build_model("mdrn-tiny").eval()
    color = build_model("mdrn-tiny", in_channels=3).eval()
    color.load_state_dict(gray_to_color(gray.state_dict(), "head", "tail"))
    x = torch.rand(1, 1, 24, 24)
    with torch.no_grad():
        want = gray(x)
        got = color(x.repeat(1, 3, 1, 1))
    for c in range(3):
        assert torch.allclose(got[:, c:c + 1], want, atol=1e-5)


def test_names_missing_layer() -> None:
    gray = build_model("mdrn-tiny")
    with pytest.raises(KdrestoreError, match="first_conv"):
        gray_to_color(gray.state_dict(), "first_conv", "tail")
