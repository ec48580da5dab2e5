"""Analytic predictors beside the simulators: same Params, jittable, vmappable, float64-exact
where THEORY.md says [E]. Functions named `*_loss` carry the factor 1/2; `*_risk` and `*_error`
return E||w_hat - w*||^2_Sigma without it."""

from spectral_sim.theory import linear, random_features, ridge
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
from spectral_sim.theory.random_features import rf_approx_error, sgd_loss_given_features
from spectral_sim.theory.ridge import kappa, ols_risk, ridge_equivalent, ridge_risk

__all__ = [
    "gd_loss",
    "gf_loss",
    "gf_loss_asymptote",
    "kappa",
    "learning_frontier",
    "linear",
    "ols_risk",
    "random_features",
    "rf_approx_error",
    "ridge",
    "ridge_equivalent",
    "ridge_risk",
    "sgd_critical_lr",
    "sgd_loss",
    "sgd_loss_given_features",
    "sgd_loss_limit",
    "sgd_stability",
    "tail_dominance_limit",
    "tail_dominance_ratio",
    "tail_loss",
    "truncation_tail",
]
