"""The optimizer's parameter groups and the learning-rate schedules, step by step."""

import pytest
import torch

from ftkit.engine.optim import build_optimizer, build_scheduler
from ftkit.recipe.schema import TrainSection


def lrs(cfg: TrainSection, total: int) -> list[float]:
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched = build_scheduler(opt, cfg, total)
    out = []
    for _ in range(total):
        out.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    return out


def test_wsd_warms_up_holds_then_decays_over_the_last_fraction():
    got = lrs(TrainSection(lr=1.0, schedule="wsd", warmup_steps=10, decay_fraction=0.2, min_lr_ratio=0.0), 100)
    assert got[0] == 0.0 and got[5] == pytest.approx(0.5)
    assert all(v == pytest.approx(1.0) for v in got[10:81])  # stable until the last 20 steps
    assert got[81] < 1.0 and got[90] == pytest.approx(0.5) and got[99] == pytest.approx(0.05)
    floor = lrs(TrainSection(lr=1.0, schedule="wsd", decay_fraction=0.5, min_lr_ratio=0.2), 10)
    assert floor[:6] == pytest.approx([1.0] * 6) and floor[-1] > 0.2 - 1e-9


def test_linear_and_cosine_reach_their_floors():
    lin = lrs(TrainSection(lr=1.0, schedule="linear", warmup_steps=0), 10)
    assert lin[0] == 1.0 and lin[5] == pytest.approx(0.5)
    cos = lrs(TrainSection(lr=1.0, schedule="cosine", min_lr_ratio=0.1), 1000)
    assert cos[500] == pytest.approx(0.55, abs=0.01) and min(cos) >= 0.1 - 1e-9


def test_no_weight_decay_on_biases_and_norms():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    opt = build_optimizer(model, TrainSection(weight_decay=0.1))
    decay = {g["weight_decay"]: sum(p.numel() for p in g["params"]) for g in opt.param_groups}
    assert decay == {0.1: 16, 0.0: 4 + 4 + 4}
