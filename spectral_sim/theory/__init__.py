"""Analytic predictors beside the simulators: same Params, jittable, vmappable, float64-exact
where THEORY.md says [E]. Functions named `*_loss` carry the factor 1/2; `*_risk` and `*_error`
return E||w_hat - w*||^2_Sigma without it."""

from spectral_sim.theory import linear
from spectral_sim.theory.linear import (
    gd_loss,
    gf_loss,
    gf_loss_asymptote,
    learning_frontier,
    sgd_critical_lr,
    sgd_loss,
    sgd_loss_limit,
    sgd_stability,
    tail_dominance_limit,
    tail_dominance_ratio,
    tail_loss,
    truncation_tail,
)

__all__ = [
    "gd_loss",
    "gf_loss",
    "gf_loss_asymptote",
    "learning_frontier",
    "linear",
    "sgd_critical_lr",
    "sgd_loss",
    "sgd_loss_limit",
    "sgd_stability",
    "tail_dominance_limit",
    "tail_dominance_ratio",
    "tail_loss",
    "truncation_tail",
]
