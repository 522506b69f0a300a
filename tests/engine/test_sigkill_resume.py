import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from resume_sigkill import run  # noqa: E402

from test_trainer import tiny_config  # noqa: E402


def test_sigkilled_run_resumes_to_the_same_losses(tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config()))
    result = run(str(cfg), steps=18, workdir=tmp_path)
    assert 6 <= result["killed_after_checkpoint_step"] < 18
    assert result["identical_losses"], (result["losses_full"], result["losses_resumed"])
    assert result["max_weight_diff"] == 0.0
