"""Every experiment states its claims once, as a claims.Table, and makes none by hand: the engine
(spectral_sim.claims) decides every verdict."""

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
