"""Every experiment states its claims once, as a claims.Table, and makes none by hand: the engine
(spectral_sim.claims) decides every verdict. A statement names the Config fields it depends on
({cfg.<field>}), so a report says the scale it ran at and `spectral-sim list` shows both."""

import dataclasses
import inspect
import re

import pytest

from spectral_sim import claims, registry


@pytest.mark.parametrize("name", registry.names())
def test_claims_are_one_table_decided_by_the_engine(name):
    module = registry.load(name)
    assert isinstance(module.CLAIMS, claims.Table) and len(module.CLAIMS) > 0
    source = inspect.getsource(module)
    assert not re.search(r"\bClaim\(", source), f"{name} builds a Claim by hand"
    assert "report.Claim" not in source and "import Claim" not in source
    for spec in module.CLAIMS:
        assert spec.statement and spec.source, spec.id
    listing = registry.claims(name)
    assert list(listing) == [spec.pattern for spec in module.CLAIMS]


def _scales(module):
    """The experiment's Config at full scale and at --quick (its QUICK on the defaults)."""
    return module.Config(), registry.quick(module.Config(quick=True), module.QUICK)


@pytest.mark.parametrize("name", registry.names())
def test_statements_name_real_config_fields_and_say_their_scale(name):
    module = registry.load(name)
    full, quick = _scales(module)
    # The table knows its Config, so a misspelt field fails when the module is imported.
    assert module.CLAIMS.config is module.Config
    fields = {f.name for f in dataclasses.fields(module.Config)}
    # run states its claims with the config it ran with
    calls = re.findall(r"CLAIMS\.evaluate\(([^)]*)\)", inspect.getsource(module.run))
    assert calls and all("config=cfg" in call for call in calls), calls
    at_full, at_quick = module.CLAIMS.listing(full), module.CLAIMS.listing(quick)
    both = registry.claims(name)
    for spec in module.CLAIMS:
        assert set(spec.config_fields) <= fields, spec.id
        assert "{cfg." not in both[spec.pattern] and "{cfg." not in spec.stated(quick), spec.id
        differ = [f for f in spec.config_fields if getattr(full, f) != getattr(quick, f)]
        # the listings at the two scales differ exactly where the configs differ
        assert (at_full[spec.pattern] != at_quick[spec.pattern]) == bool(differ), spec.id
        assert (spec.stated(full) != spec.stated(quick)) == bool(differ), spec.id
        for field in differ:  # `spectral-sim list` shows both values of each such field
            assert re.search(rf"\b{field} \([^;]+; --quick ", both[spec.pattern]), (spec.id, field)


def test_some_statement_differs_between_the_scales():
    """The test above is not vacuous: the quick runs' reports state other values."""
    differ = []
    for name in registry.names():
        module = registry.load(name)
        full, quick = _scales(module)
        differ += [spec.id for spec in module.CLAIMS if spec.stated(full) != spec.stated(quick)]
    assert "attention.sphere_consensus" in differ and len(differ) > 10


@pytest.mark.parametrize("name", registry.names())
def test_every_experiment_has_three_valid_scales(name):
    """Each Config documents its quick, full and paper sizes (QUICK and PAPER on the defaults,
    fields of the Config), and its `check` accepts the config of every scale, before anything
    compiles; the paper scale changes something."""
    module = registry.load(name)
    fields = {f.name for f in dataclasses.fields(module.Config)}
    assert {"quick", "paper"} <= fields and set(module.QUICK) | set(module.PAPER) <= fields
    sized = getattr(module, "sized", lambda cfg: registry.scaled(cfg, module.QUICK, module.PAPER))
    configs = {scale: sized(module.Config(**({} if scale == "full" else {scale: True})))
               for scale in registry.SCALES}  # fmt: skip
    for scale, cfg in configs.items():
        assert registry.scale(cfg) == scale
        module.check(cfg)
    assert dataclasses.replace(configs["paper"], paper=False) != module.Config()


def test_the_grokking_transformer_is_canonical_at_the_paper_scale_and_a_model_choice_below():
    """spectral_edge: --scale paper is the canonical transformer on a + b mod 113; below it,
    --model transformer keeps its network and optimiser on a smaller task; a field given
    explicitly survives both."""
    module = registry.load("spectral_edge")
    paper = module.sized(module.Config(paper=True))
    canonical = dict(model="transformer", p=113, train_fraction=0.3, width=128, hidden=512,
                     lr=1e-3, weight_decay=1.0, b2=0.98)  # fmt: skip
    assert {k: getattr(paper, k) for k in canonical} == canonical
    for at in ("full", "quick"):
        cfg = module.sized(module.Config(model="transformer", quick=at == "quick"))
        assert (cfg.width, cfg.hidden, cfg.b2, cfg.lr) == (128, 512, 0.98, 1e-3) and cfg.p < 113
        module.check(cfg)
    assert module.sized(module.Config()) == module.Config()  # the MLP at full scale
    with registry.explicit({"p"}):
        assert module.sized(module.Config(model="transformer", p=31, quick=True)).p == 31
