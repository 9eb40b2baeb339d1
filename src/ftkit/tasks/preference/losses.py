"""The preference losses on sequence log-probs, one value per pair, as TRL 1.16 computes them (its DPOTrainer for
sigmoid and ipo, CPOTrainer's simpo, ORPOTrainer's odds ratio), so a run can be checked against it number for number.

Inputs: the policy's log-probs of the chosen and rejected replies summed over their tokens (`pc`, `pr`), the
reference's (`rc`, `rr`, None for the reference-free losses) and the replies' token counts (`nc`, `nr`). Each loss
returns (per-pair loss, chosen reward, rejected reward, chosen log-prob, rejected log-prob); the rewards and log-probs
are those TRL logs for the loss (the reference-free ones: per-token mean log-probs, rewards beta times them)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LN2 = math.log(2.0)


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for x < 0, without cancellation (branch at -ln 2, as TRL's ORPO)."""
    return torch.where(x < -LN2, torch.log1p(-torch.exp(x)), torch.log(-torch.expm1(x)))


def sigmoid(beta, gamma, pc, pr, rc, rr, nc, nr):
    lc, lr = pc - rc, pr - rr
    return -F.logsigmoid(beta * (lc - lr)), beta * lc, beta * lr, pc, pr


def ipo(beta, gamma, pc, pr, rc, rr, nc, nr):
    # TRL 1.16: the log-ratios per completion token (confirmed with the IPO authors, its comment says), tau = beta
    lc, lr = pc - rc, pr - rr
    return ((lc / nc - lr / nr) - 1 / (2 * beta)) ** 2, beta * lc, beta * lr, pc, pr


def simpo(beta, gamma, pc, pr, rc, rr, nc, nr):
    ac, ar = pc / nc, pr / nr
    return -F.logsigmoid(beta * (ac - ar) - gamma), beta * ac, beta * ar, ac, ar


def orpo(beta, gamma, pc, pr, rc, rr, nc, nr):
    # the chosen reply's NLL (per token) plus beta times the odds-ratio loss (ORPO eq. 6-7; TRL's odds_ratio_loss)
    ac, ar = pc / nc, pr / nr
    log_odds = (ac - ar) - (log1mexp(ac) - log1mexp(ar))
    return -ac - beta * F.logsigmoid(log_odds), beta * ac, beta * ar, ac, ar


LOSSES = {"sigmoid": sigmoid, "ipo": ipo, "simpo": simpo, "orpo": orpo}


def at_start(kind: str, beta: float) -> float:
    """The loss of a policy equal to its reference (every log-ratio 0): ln 2 for sigmoid, (1 / (2 beta))^2 for ipo."""
    return {"sigmoid": LN2, "ipo": (1 / (2 * beta)) ** 2}[kind]
