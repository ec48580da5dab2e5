"""Every experiment states its claims once, as a claims.Table, and makes none by hand: the engine
(spectral_sim.claims) decides every verdict."""

import inspect
import re

import pytest

import experiments
from spectral_sim import claims


@pytest.mark.parametrize("name", experiments.EXPERIMENTS)
def test_claims_are_one_table_decided_by_the_engine(name):
    module = experiments.load(name)
    assert isinstance(module.CLAIMS, claims.Table) and len(module.CLAIMS) > 0
    source = inspect.getsource(module)
    assert not re.search(r"\bClaim\(", source), f"{name} builds a Claim by hand"
    assert "report.Claim" not in source and "import Claim" not in source
    for spec in module.CLAIMS:
        assert spec.statement and spec.source, spec.id
    listing = experiments.claims(name)
    assert list(listing) == [spec.pattern for spec in module.CLAIMS]
