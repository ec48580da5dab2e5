"""The self-consuming loop simulator (models.self_improve): subsample, verifier, power-law data
and bad input; the exact closed forms are checked in test_self_improve_theory."""

import jax
import numpy as np
import pytest
from conftest import unchecked

from spectral_sim import PowerLaw, fit, simulate, theory
from spectral_sim.models import self_improve
from spectral_sim.theory import self_improve as closed


def _runs(params, seeds=4000, field="error"):
    def run(key):
        return getattr(
            simulate.trajectory(self_improve, params, key, n_records=params.generations)[1], field
        )

    return np.asarray(jax.jit(jax.vmap(run))(jax.random.split(jax.random.key(1), seeds)))


def test_subsample_on_a_fixed_design_follows_kappa_n():
    """Accumulate-subsample on a fixed design at T / d = 33: kappa_n sigma^2 d / (T - d - 1)
    (THEORY.md §4.2 [A]) within its quoted finite-size error, 2 %, plus 4 SEM."""
    params = self_improve.Params(dim=3, samples=100, generations=10, regime="subsample",
                                 design="fixed")  # fmt: skip
    errors = _runs(params)
    predicted = np.asarray(closed.subsample_error(d=3, noise=1.0, generations=10, T=100))
    mean, sem = errors.mean(0), np.asarray(fit.sem(errors, axis=0))
    assert np.all(np.abs(mean - predicted) <= 0.02 * predicted + 4 * sem)
    accumulate = closed.fixed_design_error(
        regime="accumulate", d=3, noise=1.0, generations=10, T=100
    )
    assert mean[-1] > 1.5 * float(accumulate[-1])  # about 1.8x the accumulate limit


def test_power_law_inputs_keep_the_isotropic_ols_risk():
    """OLS is affine-equivariant: on Sigma = diag(k^-1.5) the risk ||w - w*||^2_Sigma of the
    replace loop is n sigma^2 d / (T - d - 1), as for isotropic data."""
    spectrum = PowerLaw(s=1.5, a=2.0, n_modes=4)
    params = self_improve.Params(dim=4, samples=12, generations=5, spectrum=spectrum)
    risk = _runs(params, seeds=20_000, field="risk")
    predicted = np.asarray(
        theory.collapse_error(regime="replace", d=4, noise=1.0, generations=5, T=12)
    )
    sem = np.asarray(fit.sem(risk, axis=0))
    assert np.all(np.abs(risk.mean(0) - predicted) < fit.z_simultaneous(5) * sem)


def test_a_verifier_is_the_external_signal():
    """Accumulate with a perfect verifier (threshold sigma) ends below the unverified loop and
    below generation 1; with accuracy 0 it keeps a fair-coin half of the synthetic rows."""
    base = dict(dim=4, samples=20, generations=8, regime="accumulate", verify=True)
    plain = _runs(self_improve.Params(**(base | dict(verify=False))))
    checked = _runs(self_improve.Params(**base, verifier=1.0, threshold=0.5))
    assert checked[:, -1].mean() < plain[:, -1].mean() - 5 * float(fit.sem(checked[:, -1]))
    assert checked[:, -1].mean() < checked[:, 0].mean()
    share = _runs(self_improve.Params(**base, verifier=0.0), seeds=500, field="accepted")
    # Generation 1 is real (all kept); afterwards a fair coin keeps Binomial(20, 1/2) / 20.
    assert share[:, 0] == pytest.approx(1.0)
    assert abs(share[:, 1:].mean() - 0.5) < 4 * np.sqrt(0.25 / (20 * share[:, 1:].size))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_real=30.0), "n_real"),
        (dict(verifier=1.5), "verifier"),
        (dict(noise=-1.0), "noise"),
        (dict(regime="recycle"), "regime"),
        (dict(design="random"), "design"),
        (dict(sizes=np.ones(3) * 10), "sizes"),
        (dict(sizes=np.full(4, 30.0)), "sizes"),
        (dict(samples=4), "OLS"),
        (dict(spectrum=PowerLaw(s=1.0, a=2.0, n_modes=3)), "n_modes"),
        (dict(generations=0), "generations"),
        (dict(learner="adam"), "learner"),
        (dict(learner="sgd", lr=0.0), "lr"),
        (dict(learner="sgd", ridge=0.1), "ridge"),
    ],
)
def test_bad_input_is_rejected_before_tracing(kwargs, message):
    with unchecked(), pytest.raises(ValueError, match=message):
        self_improve.Params(**(dict(dim=5, samples=20, generations=4) | kwargs))


def test_sgd_generation_one_is_the_exact_one_pass_recursion():
    """learner='sgd' trains from w = 0 by one pass over T rows: generation 1's risk is twice
    theory.sgd_loss (the exact one-pass SGD recursion, B = 1) at T steps; later generations,
    fitted to their predecessor's labels, only get worse (replace)."""
    spectrum = PowerLaw(s=1.5, a=2.0, n_modes=6)
    params = self_improve.Params(
        dim=6, samples=40, generations=4, spectrum=spectrum, learner="sgd", lr=0.3, noise=0.1
    )
    risk = _runs(params, seeds=20_000, field="risk")
    loss = theory.sgd_loss(spectrum, lr=0.3, batch=1, noise=0.1, steps=np.array([40]))
    exact = 2 * float(loss[0])
    sem = np.asarray(fit.sem(risk, axis=0))
    assert abs(risk[:, 0].mean() - exact) < fit.z_simultaneous(1) * sem[0]
    assert np.all(np.diff(risk.mean(0)) > 3 * sem[1:])


def test_sgd_accumulate_passes_over_every_row_so_far():
    """With accumulate, generation n's SGD pass sees n T rows: its first generation equals the
    replace loop's (same draws), and the buffer holds every row drawn."""
    base = dict(dim=3, samples=8, generations=3, learner="sgd", lr=0.2)
    state = self_improve.init(self_improve.Params(**base, regime="accumulate"), jax.random.key(0))
    assert state.x.shape == (24, 3)
    acc = _runs(self_improve.Params(**base, regime="accumulate"), seeds=50)
    rep = _runs(self_improve.Params(**base, regime="replace"), seeds=50)
    np.testing.assert_allclose(acc[:, 0], rep[:, 0], rtol=1e-12)
    assert not np.allclose(acc[:, 1], rep[:, 1])
