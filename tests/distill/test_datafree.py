from pathlib import Path

import pytest
import torch
from torch import nn

from kdrestore.cli import main
from kdrestore.config import load_config
from kdrestore.data.imageio import read_image
from kdrestore.distill.generator import DegradationAwareGenerator, draw_latents, synthesis_params
from kdrestore.distill.methods.datafree import DataFreeDistillation
from kdrestore.distill.teacher import PerChannel
from kdrestore.engine import Trainer
from kdrestore.engine.datasets import KeyedDataset, build_dataset
from kdrestore.errors import KdrestoreError
from kdrestore.experiments.bench_datafree import GrayAsRGB
from kdrestore.models.dncnn import DnCNN
from kdrestore.models.registry import build_model
from kdrestore.engine.checkpoint import CheckpointManager
from runutil import final_weights, stop_at

TINY_TEACHER = {"name": "unet-tiny", "args": {"width": 4, "levels": 2}}  # + "weights", see tiny_teacher


@pytest.fixture(autouse=True, scope="module")
def tiny_teacher(tmp_path_factory):
    """Weights files for the tiny teachers (a teacher needs weights): RGB in TINY_TEACHER, gray returned."""
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("teachers")
    for channels in (1, 3):
        torch.manual_seed(channels)
        model = build_model("unet-tiny", in_channels=channels, width=4, levels=2)
        save_file(model.state_dict(), str(folder / f"unet{channels}.safetensors"))
    TINY_TEACHER["weights"] = str(folder / "unet3.safetensors")
    yield folder / "unet1.safetensors"


def df_config(labels=("haze", "rain", "noise"), teachers=None, steps=4, crop=16, mode=None, **options):
    return load_config(data={
        "name": "df", "task": "dehaze",
        "model": {"name": "unet-tiny", "args": {"width": 4, "levels": 2, **({"in_channels": 1} if mode else {})}},
        "data": {"train": {"kind": "latent", "crop": crop, "mode": mode, "params": {"degradations": list(labels)}}},
        "train": {"steps": steps, "batch_size": 3, "log_every": 1, "ckpt_every": 2},
        "distill": {"method": "datafree", "teachers": teachers or [TINY_TEACHER], "contrastive": {"weight": 0.5},
                    "options": {"generator_width": 8, "latent_channels": 4, "generator_every": 1, **options}},
    })


class Constant(nn.Module):
    """A stand-in teacher that returns a constant image (with a conv, so it has parameters)."""

    def __init__(self, value: float, degradations=None) -> None:
        super().__init__()
        self.conv, self.value, self.degradations = nn.Conv2d(3, 3, 1), value, degradations
        self.feature_points = ["conv"]

    def forward(self, x):
        return self.conv(x) * 0 + self.value


def method_with(cfg, teachers=None, student=None):
    torch.manual_seed(0)
    m = DataFreeDistillation(cfg, teachers)
    student = student or build_model("unet-tiny", width=4, levels=2)
    m.setup(student, "cpu", {})
    return m, student


def test_latent_data_needs_no_path_and_each_sample_is_a_function_of_its_key():
    cfg = df_config()
    ds = build_dataset(cfg.data.train, "dehaze", train=True, seed=0)
    keyed = KeyedDataset(ds, seed=0)
    a, b, c = keyed[(0, 4)], keyed[(0, 4)], keyed[(1, 4)]
    assert a == b and a["seed"] != c["seed"]
    assert [keyed[(0, i)]["degradation"] for i in range(4)] == ["haze", "rain", "noise", "haze"]
    with pytest.raises(KdrestoreError, match="validate"):
        build_dataset(cfg.data.train, "dehaze", train=False, seed=0)
    bad = load_config(data={"data": {"train": {"kind": "latent", "params": {"degradations": ["snow"]}}}})
    with pytest.raises(KdrestoreError, match="degradations"):
        build_dataset(bad.data.train, "dehaze", train=True, seed=0)


def test_each_degradation_is_differentiable_to_the_generator():
    torch.manual_seed(0)
    gen = DegradationAwareGenerator(3, latent_channels=4, width=8)
    params = synthesis_params({"noise": {"sigma": 50}})
    for label in ("haze", "rain", "noise"):
        lat = draw_latents([1, 2], [label] * 2, channels=3, size=16, latent_channels=4, params=params)
        x, clean = gen(lat)
        assert x.shape == clean.shape == (2, 3, 16, 16) and not torch.allclose(x, clean)
        gen.zero_grad()
        x.square().mean().backward()
        assert gen.to_clean.weight.grad.abs().sum() > 0, label
        assert gen.low[0][0].weight.grad.abs().sum() > 0, label
    lat = draw_latents([3], ["noise"], channels=3, size=16, latent_channels=4, params=params)
    x, clean = gen(lat)
    assert torch.allclose(x - clean, 50 / 255 * lat.noise, atol=1e-6)


def test_generator_steps_update_only_the_generator_and_raise_the_discrepancy():
    cfg = df_config(generator_lr=0.01, tv_weight=0.0, diversity_weight=0.0, generator_grad_clip=None)
    m, student = method_with(cfg)
    student_before = [p.detach().clone() for p in student.parameters()]
    gen_before = [p.detach().clone() for p in m.generator.parameters()]

    def discrepancy():  # on the fixed batch of generator_step(0, 0)
        return m.generator_step(0, 0)["discrepancy"]

    first = discrepancy()
    for _ in range(6):
        last = discrepancy()
    assert last > first
    assert any(not torch.equal(a, b) for a, b in zip(gen_before, m.generator.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(student_before, student.parameters()))
    assert all(p.grad is None for p in student.parameters())
    assert all(p.grad is None for t in m.teachers for p in t.parameters())


def test_student_terms_send_gradient_to_the_student_and_none_to_the_generator():
    m, student = method_with(df_config())
    batch = {"seed": torch.tensor([5, 6, 7]), "degradation": ["haze", "rain", "noise"]}
    out = m.forward(student, batch)
    terms = m.losses(batch, out, 0)
    assert set(terms) == {"df_output", "df_contrastive"}
    for name, value in terms.items():
        student.zero_grad()
        value.backward(retain_graph=True)
        assert sum(p.grad.abs().sum() for p in student.parameters() if p.grad is not None) > 0, name
        assert all(p.grad is None for p in m.generator.parameters()), name


def test_routing_gives_each_sample_the_target_of_its_degradation_teacher():
    teachers = [Constant(0.25, ["haze", "rain"]), Constant(0.75, ["noise"])]
    m, student = method_with(df_config(), teachers)
    x = torch.rand(4, 3, 16, 16)
    t = m.teacher_targets(x, ["haze", "noise", "rain", "noise"])
    assert [float(v) for v in t.mean((1, 2, 3))] == pytest.approx([0.25, 0.75, 0.25, 0.75])
    both = [Constant(0.2, ["haze"]), Constant(0.6, None)]  # the second covers every degradation
    m2, _ = method_with(df_config(), both)
    assert [float(v) for v in m2.teacher_targets(x[:2], ["haze", "rain"]).mean((1, 2, 3))] == pytest.approx([0.4, 0.6])
    with pytest.raises(KdrestoreError, match="no teacher covers degradation 'noise'"):
        method_with(df_config(), [Constant(0.5, ["haze", "rain"])])


class Recording(nn.Module):
    """A teacher that records the sizes it sees and returns its input (so windows can be checked)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.sizes, self.feature_points = nn.Conv2d(3, 3, 1), [], ["conv"]

    def forward(self, x):
        self.sizes.append(x.shape[-1])
        return x + 0 * self.conv(x)


def test_a_label_with_context_is_restored_from_the_whole_image_and_cut_to_the_window():
    teacher = Recording()
    teacher.degradations = ["haze"]
    cfg = df_config(labels=["haze", "noise"], context={"haze": 32})
    m, student = method_with(cfg, [teacher, Constant(0.5, ["noise"])])
    batch = {"seed": torch.tensor([11, 12]), "degradation": ["haze", "noise"]}
    out = m.forward(student, batch)
    assert out.shape[-1] == 16 and m._full.shape[-1] == 32
    teacher.sizes.clear()
    target = m.teacher_targets(m._x, m._labels, full=m._full, window=m._window)
    assert teacher.sizes == [32]
    assert torch.allclose(target[0], m._x[0]) and torch.allclose(target[1], torch.full_like(target[1], 0.5))
    assert m.generator_step(0)["discrepancy"] > 0 and 32 in teacher.sizes
    with pytest.raises(KdrestoreError, match="context"):
        DataFreeDistillation(df_config(context={"haze": 30}))


def test_gray_teacher_per_channel_and_bn_statistics_term():
    torch.manual_seed(0)
    gray = DnCNN(1, depth=3, features=8).eval()
    wrapped = PerChannel(gray)
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        expected = torch.cat([gray(x[:, c:c + 1]) for c in range(3)], 1)
        assert torch.allclose(wrapped(x), expected, atol=1e-6)
    assert wrapped.feature_points[0].startswith("model.dncnn.")
    wrapped.degradations = ["noise"]
    m, _ = method_with(df_config(labels=["noise"]), [wrapped])
    assert m.generator_step(0)["bn"] > 0
    m_plain, _ = method_with(df_config(labels=["noise"]))
    assert "bn" not in m_plain.generator_step(0)
    terms = m.generator_terms(1)
    assert set(terms) == {"discrepancy", "adversarial", "tv", "fidelity", "diversity", "bn"}
    for name, value in terms.items():  # every term of the generator loss trains the generator
        grads = torch.autograd.grad(value, list(m.generator.parameters()), retain_graph=True, allow_unused=True)
        assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0, name


def test_generator_every_sets_the_ratio_of_student_to_generator_steps():
    m, _ = method_with(df_config(generator_every=3, generator_steps=2, generator_start=1))
    for step in range(8):
        m.begin_step(step)
    assert m.updates == 2 * len([s for s in range(1, 8) if (s - 1) % 3 == 0])  # steps 1, 4, 7


def test_killed_run_resumes_exactly(tmp_path):
    cfg = df_config(steps=4)
    Trainer(cfg, tmp_path / "straight", progress=False).fit()
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, tmp_path / "resumed", method=stop_at(DataFreeDistillation, cfg, 3), progress=False).fit()
    resumed = Trainer(cfg, tmp_path / "resumed", resume=True, progress=False)
    assert resumed.step == 2 and resumed.method.updates == 2
    resumed.fit()
    a, b = final_weights(tmp_path / "straight"), final_weights(tmp_path / "resumed")
    assert all(torch.equal(a[k], b[k]) for k in a)
    ga = CheckpointManager(tmp_path / "straight").latest().state()["method"]["generator"]
    gb = CheckpointManager(tmp_path / "resumed").latest().state()["method"]["generator"]
    assert all(torch.equal(ga[k], gb[k]) for k in ga)


def test_distill_cli_needs_no_data_and_saves_viewable_samples(tmp_path, tiny_teacher):
    recipe = tmp_path / "df.yaml"
    recipe.write_text(
        "name: df\ntask: denoise\nmodel: {name: unet-tiny, args: {in_channels: 1, width: 4, levels: 2}}\n"
        "data: {train: {kind: latent, crop: 16, mode: gray}}\n"
        "train: {steps: 2, batch_size: 2, log_every: 1, ckpt_every: 2}\n"
        "distill: {method: datafree, teachers: [{name: unet-tiny, args: {in_channels: 1, width: 4, levels: 2},\n"
        f"                                        weights: '{tiny_teacher}'}}],\n"
        "          options: {generator_width: 8, latent_channels: 4, sample_every: 1, sample_count: 2}}\n")
    run = tmp_path / "run"
    assert main(["distill", str(recipe), "--run-dir", str(run), "--quiet"]) == 0
    grid = read_image(run / "generator" / "step_00000001.png")
    assert grid.shape == (2 + 18, 2 + 4 * 18, 3)  # one row (noise), 2 samples x (clean | degraded), 2 px gaps
    assert "gen_discrepancy" in (run / "generator" / "log.csv").read_text()
    assert main(["samples", str(run), "-o", str(tmp_path / "view.png"), "--count", "1", "--size", "32"]) == 0
    assert read_image(tmp_path / "view.png").shape == (36, 70, 3)


def test_recipes_in_configs_validate():
    from kdrestore.distill.methods import build_method

    recipes = sorted((Path(__file__).resolve().parents[2] / "configs" / "datafree").glob("*.yaml"))
    assert len(recipes) >= 4
    for path in recipes:
        cfg = load_config(path)
        assert cfg.data.train.kind == "latent" and cfg.data.train.path is None
        assert isinstance(build_method(cfg), DataFreeDistillation), path


def test_gray_as_rgb_wrapper_round_trips_channels():
    class Double(nn.Module):
        def forward(self, x):
            assert x.shape[1] == 3
            return 2 * x
    x = torch.rand(1, 1, 8, 8)
    assert torch.allclose(GrayAsRGB(Double())(x), 2 * x)


def test_bench_recipes_share_the_budget_and_give_gcanet_context():
    from kdrestore.experiments.bench import TASKS as DATA_TASKS
    from kdrestore.experiments.bench import bench_recipe
    from kdrestore.experiments.bench_datafree import TASKS, datafree_recipe

    teachers = [{"name": TASKS[k].teacher, "degradations": [TASKS[k].label]} for k in TASKS]
    multi = datafree_recipe("m", "dehaze", "rgb", ["haze", "rain", "noise"], teachers, None, 7, 4, 32, 1)
    data = bench_recipe("d", "dehaze", {"name": "unet-tiny"}, DATA_TASKS["dehaze"].train, Path("/data"), 7, 4, 32, 1)
    assert multi["train"] == data["train"] and multi["optim"] == data["optim"] and multi["schedule"] == data["schedule"]
    cfg = load_config(data=multi)
    assert cfg.data.train.kind == "latent" and cfg.data.train.path is None and cfg.data.train.crop == 32
    method = DataFreeDistillation(cfg)
    assert method.wide == {"haze"} and method.full_size == 128 and method.size == 32


def test_bench_ablation_rows_drop_the_adversarial_phase_or_the_contrastive_term():
    from kdrestore.experiments.bench_datafree import DATAFREE_ROWS, ROWS_BY_TASK, datafree_recipe

    def recipe(row):
        return datafree_recipe("r", "dehaze", "rgb", ["haze"], [TINY_TEACHER], None, 7, 4, 32, 1, DATAFREE_ROWS[row])

    assert recipe("data-free")["distill"]["contrastive"] == {"weight": 0.1}
    assert "contrastive" not in recipe("data-free-nocr")["distill"]
    assert recipe("data-free-noadv")["distill"]["options"]["generator_steps"] == 0
    assert recipe("data-free-advdeg")["distill"]["options"]["adversarial_degradation"] is True
    for row in DATAFREE_ROWS:
        load_config(data=recipe(row))  # every row validates
    assert "data-free-advdeg" not in ROWS_BY_TASK["denoise"]  # a fixed sigma has no range to move in


def test_adversarial_degradation_moves_the_parameters_inside_their_ranges_and_resumes(tmp_path):
    from kdrestore.distill.generator import DegradationShift

    shift = DegradationShift(synthesis_params({"noise": {"sigma": [5, 50]}}))
    assert set(shift.ranges) == {"haze.beta", "haze.airlight", "rain.veil", "rain.veil_airlight", "noise.sigma"}
    assert "noise.sigma" not in DegradationShift(synthesis_params({})).ranges  # a fixed sigma stays fixed
    lat = draw_latents(list(range(6)), ["haze", "rain", "noise"] * 2, channels=3, size=16, latent_channels=4,
                       params=synthesis_params({"noise": {"sigma": [5, 50]}}))
    same = shift(lat)
    assert torch.allclose(same.beta, lat.beta, atol=1e-4) and torch.allclose(same.sigma, lat.sigma, atol=1e-3)
    with torch.no_grad():
        for p in shift.offset.values():
            p.fill_(30.0)  # pushed far: still inside the range, only on samples of that label
    moved = shift(lat)
    haze, noise = lat.labels == 0, lat.labels == 2
    assert (moved.beta[haze] > lat.beta[haze]).all() and (moved.beta[haze] <= 1.8 + 1e-5).all()
    assert (moved.sigma[noise] <= 50 + 1e-4).all() and torch.equal(moved.beta[~haze], lat.beta[~haze])

    cfg = df_config(labels=("haze",), adversarial_degradation=True, generator_lr=0.05)
    m, _ = method_with(cfg)
    before = {k: float(v.detach()) for k, v in m.shift.offset.items()}
    stats = m.generator_step(0, 0)
    assert "shift_haze.beta" in stats and 0.6 < stats["shift_haze.beta"] < 1.8
    assert any(float(v.detach()) != before[k] for k, v in m.shift.offset.items())  # the adversary moved them
    state = m.state_dict()
    other, _ = method_with(cfg)
    other.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(m.shift.parameters(), other.shift.parameters()))
    with pytest.raises(KdrestoreError, match="adversarial_degradation"):
        DataFreeDistillation(df_config(labels=("noise",), adversarial_degradation=True))
