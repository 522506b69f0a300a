import pytest

from kdrestore.errors import KdrestoreError
from kdrestore.registry import Registry, UnknownNameError


def test_register_get_and_suggestions():
    reg: Registry[int] = Registry("thing")
    reg.register("alpha-net", 1, task="x")
    reg.register("beta", 2)
    assert reg.get("ALPHA-NET") == 1 and reg.entry("alpha-net").meta == {"task": "x"}
    assert reg.names() == ["alpha-net", "beta"]
    with pytest.raises(UnknownNameError, match="did you mean 'alpha-net'") as info:
        reg.get("alpha-nt")
    assert isinstance(info.value, KdrestoreError)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("beta", 3)
