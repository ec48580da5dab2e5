"""Analytic predictors beside the simulators: same Params, jittable, vmappable, float64-exact
where THEORY.md says [E]. Functions named `*_loss` carry the factor 1/2; `*_risk` and `*_error`
return E||w_hat - w*||^2_Sigma without it."""

from spectral_sim.theory import (
    attention,
    linear,
    random_features,
    ridge,
    scaling,
    self_improve,
    update_stream,
)
from spectral_sim.theory.attention import attention_gap, attention_rate
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
from spectral_sim.theory.scaling import (
    ComputeOptimal,
    chinchilla_from_sa,
    compute_optimal,
    continuum_loss,
    paper_loss_exponent,
    plrf_compute_optimal,
    plrf_from_sa,
    rf_saturation_exponent,
    ridge_data_exponent,
    sa_from_chinchilla,
    sa_from_plrf,
    soft_hard_loss_ratio,
)
from spectral_sim.theory.self_improve import collapse_error

__all__ = [
    "attention",
    "attention_gap",
    "attention_rate",
    "ComputeOptimal",
    "collapse_error",
    "chinchilla_from_sa",
    "compute_optimal",
    "continuum_loss",
    "gd_loss",
    "gf_loss",
    "gf_loss_asymptote",
    "kappa",
    "learning_frontier",
    "linear",
    "ols_risk",
    "paper_loss_exponent",
    "plrf_compute_optimal",
    "plrf_from_sa",
    "random_features",
    "rf_approx_error",
    "rf_saturation_exponent",
    "ridge",
    "ridge_data_exponent",
    "ridge_equivalent",
    "ridge_risk",
    "sa_from_chinchilla",
    "sa_from_plrf",
    "scaling",
    "self_improve",
    "update_stream",
    "sgd_critical_lr",
    "sgd_loss",
    "sgd_loss_given_features",
    "sgd_loss_limit",
    "sgd_stability",
    "soft_hard_loss_ratio",
    "tail_dominance_limit",
    "tail_dominance_ratio",
    "tail_loss",
    "truncation_tail",
]
