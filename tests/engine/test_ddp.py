import os
import subprocess
import sys

import pytest
import torch
import yaml

from kdrestore.config import load_config
from kdrestore.engine import Trainer

from runutil import final_weights, losses_of
from test_trainer import tiny_config


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not built")
def test_two_process_ddp_matches_one_process_with_the_same_global_batch(tmp_path):
    data = tiny_config(steps=3, batch_size=4, ckpt_every=3)
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(yaml.safe_dump(data))
    Trainer(load_config(cfg_file), tmp_path / "one", progress=False).fit()

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "kdrestore.cli", "train", str(cfg_file), "--run-dir", str(tmp_path / "two"), "--quiet"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    one, two = final_weights(tmp_path / "one"), final_weights(tmp_path / "two")
    assert one.keys() == two.keys()
    for k in one:
        assert torch.allclose(one[k], two[k], atol=1e-5, rtol=1e-4), k
    # the logged loss is the mean over both processes, i.e. the single-process loss
    logged_one, logged_two = losses_of(tmp_path / "one"), losses_of(tmp_path / "two")
    assert [s for s, _ in logged_two] == [1, 2, 3]
    assert [round(v, 4) for _, v in logged_one] == [round(v, 4) for _, v in logged_two]
