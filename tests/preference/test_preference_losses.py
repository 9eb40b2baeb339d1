"""Each preference loss on fixed log-probs against a value computed by hand (math, not torch), and -- slow tier, as
importing TRL takes ~15 s -- against TRL 1.16's own code (CPOTrainer.cpo_loss for simpo, ORPOTrainer.odds_ratio_loss)."""

from __future__ import annotations

import math
import types

import pytest
import torch

from ftkit.tasks.preference.losses import LOSSES, at_start

# two pairs: policy / reference log-probs summed over the replies, and the replies' token counts
PC, PR, RC, RR, NC, NR = [-12.0, -30.0], [-15.0, -20.0], [-13.0, -28.0], [-14.0, -21.0], [4.0, 10.0], [5.0, 8.0]


def _t(x):
    return torch.tensor(x, dtype=torch.float64)


def _run(kind, beta, gamma=0.5):
    return [v.tolist() for v in LOSSES[kind](beta, gamma, _t(PC), _t(PR), _t(RC), _t(RR), _t(NC), _t(NR))]


def _logsig(x):
    return -math.log1p(math.exp(-x))


def test_sigmoid_is_dpo():
    loss, wc, wr, lc, lr = _run("sigmoid", 0.1)
    # pair 1: chosen log-ratio +1, rejected -1: -log sigmoid(0.1 * 2); pair 2: -2 and +1: -log sigmoid(-0.3)
    assert loss == pytest.approx([-_logsig(0.2), -_logsig(-0.3)], abs=1e-12)
    assert wc == pytest.approx([0.1, -0.2]) and wr == pytest.approx([-0.1, 0.1])
    assert lc == PC and lr == PR


def test_ipo_is_trls_per_token_form():
    loss, wc, wr, *_ = _run("ipo", 0.5)
    # ((chosen log-ratio / its tokens - rejected's / its tokens) - 1 / (2 beta))^2
    assert loss == pytest.approx([((1 / 4 - (-1) / 5) - 1.0) ** 2, ((-2 / 10 - 1 / 8) - 1.0) ** 2], abs=1e-12)
    assert wc == pytest.approx([0.5, -1.0])


def test_simpo_is_reference_free_with_a_margin():
    loss, wc, wr, lc, lr = LOSSES["simpo"](2.0, 0.5, _t(PC), _t(PR), None, None, _t(NC), _t(NR))
    # -log sigmoid(beta * (mean chosen - mean rejected) - gamma): pair 1 means -3 and -3; pair 2 -3 and -2.5
    assert loss.tolist() == pytest.approx([-_logsig(2.0 * 0.0 - 0.5), -_logsig(2.0 * -0.5 - 0.5)], abs=1e-12)
    assert lc.tolist() == pytest.approx([-3.0, -3.0]) and wr.tolist() == pytest.approx([-6.0, -5.0])


def test_orpo_is_nll_plus_odds_ratio():
    loss, wc, *_ = LOSSES["orpo"](0.1, 0.0, _t(PC), _t(PR), None, None, _t(NC), _t(NR))

    def log_odds(p):  # log(p / (1 - p)) of a per-token mean log-prob
        return p - math.log(1 - math.exp(p))

    want = []
    for c, r in ((-3.0, -3.0), (-3.0, -2.5)):
        want.append(-c - 0.1 * _logsig(log_odds(c) - log_odds(r)))
    assert loss.tolist() == pytest.approx(want, abs=1e-12)


def test_the_start_values():
    assert at_start("sigmoid", 0.1) == pytest.approx(math.log(2))
    assert at_start("ipo", 0.5) == pytest.approx(1.0)
    zero = _t([0.0])
    assert LOSSES["sigmoid"](0.3, 0, _t([-5.0]), _t([-7.0]), _t([-5.0]), _t([-7.0]), zero + 1, zero + 1)[0].item() == \
        pytest.approx(math.log(2))


@pytest.mark.slow
def test_simpo_and_orpo_equal_trls_code():
    import os

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from trl.experimental.cpo.cpo_trainer import CPOTrainer
    from trl.experimental.orpo.orpo_trainer import ORPOTrainer

    pc, pr, nc, nr = _t(PC), _t(PR), _t(NC), _t(NR)
    me = types.SimpleNamespace(alpha=0.0, loss_type="simpo", beta=2.0, simpo_gamma=0.5, label_smoothing=0.0,
                               accelerator=types.SimpleNamespace(device="cpu"))
    trl_loss, trl_wc, trl_wr = CPOTrainer.cpo_loss(me, pc / nc, pr / nr)  # TRL averages per token before the loss
    loss, wc, wr, *_ = LOSSES["simpo"](2.0, 0.5, pc, pr, None, None, nc, nr)
    assert torch.allclose(loss, trl_loss) and torch.allclose(wc, trl_wc) and torch.allclose(wr, trl_wr)
    me.beta = 0.1
    ratio, trl_wc, trl_wr, _, _ = ORPOTrainer.odds_ratio_loss(me, pc / nc, pr / nr)
    loss, wc, *_ = LOSSES["orpo"](0.1, 0.0, pc, pr, None, None, nc, nr)
    assert torch.allclose(loss, -pc / nc - ratio.double()) and torch.allclose(wc, trl_wc.double())
