"""Analytic predictors beside the simulators: same Params, jittable, vmappable, float64-exact
where THEORY.md says [E]. Functions named `*_loss` carry the factor 1/2; `*_risk` and `*_error`
return E||w_hat - w*||^2_Sigma without it.

Each module predicts the model module of its name. Its Params forms take that simulator's own
Params, `f(params)` or `f(params, steps)` / `f(params, t)`, are jax.vmap-able over a stacked grid
of Params (what `compare` evaluates), and are named after the simulator or quantity they predict
(`linear.sgd`, `linear.gd`, `linear.gf`, `evolution.flow`, `ridge.risk`, ...). The keyword forms
exported here (`gf_loss(spectrum, t)`, `sgd_loss(spectrum, lr=, batch=, noise=, steps=)`,
`ridge_risk(spectrum, n=, ridge=, noise=)`, ...) stay for notebooks: they build the Params and
call the Params form, or, where an argument is real and traced in the formula but a static
shape in the Params (a sample size, a width), the Params form calls them. Formulas of a spectrum
or of exponents that no simulator records (asymptotes, exponents, frontiers, scaling laws) take
those inputs directly; each module's docstring says which are which."""

from spectral_sim.theory import (
    attention,
    compression,
    evolution,
    geometric,
    linear,
    momentum,
    random_features,
    ridge,
    scaling,
    self_improve,
    update_stream,
)
from spectral_sim.theory.attention import attention_gap, attention_rate
from spectral_sim.theory.compression import (
    dithered_quantization_loss,
    perturbation_loss,
    prune_loss,
    pruned_loss,
    relative_perturbation_loss,
)
from spectral_sim.theory.evolution import (
    diagonal_loss,
    evolution_exponent,
    evolution_frontier,
    evolution_loss,
    evolution_tail_limit,
)
from spectral_sim.theory.linear import (
    gd_loss,
    gf_exponent,
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
from spectral_sim.theory.momentum import momentum_loss, momentum_stability
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
    "compression",
    "diagonal_loss",
    "dithered_quantization_loss",
    "evolution",
    "evolution_exponent",
    "evolution_frontier",
    "evolution_loss",
    "evolution_tail_limit",
    "geometric",
    "chinchilla_from_sa",
    "compute_optimal",
    "continuum_loss",
    "gd_loss",
    "gf_exponent",
    "gf_loss",
    "gf_loss_asymptote",
    "kappa",
    "learning_frontier",
    "linear",
    "momentum",
    "momentum_loss",
    "momentum_stability",
    "ols_risk",
    "paper_loss_exponent",
    "perturbation_loss",
    "plrf_compute_optimal",
    "plrf_from_sa",
    "prune_loss",
    "pruned_loss",
    "random_features",
    "relative_perturbation_loss",
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
