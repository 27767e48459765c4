"""Notebook parameters: the tagged cell is literal-only; overrides are typed like the defaults."""

import pytest

from lab import params


def test_train_defaults_are_literals_with_comments():
    d = params.notebook_defaults("train")
    assert d["model"] == "edsr_baseline"
    assert isinstance(d["scale"], int)
    src = params.parameters_cell(params.notebook_path("train"))
    for line in src.strip().splitlines():
        assert "#" in line, f"parameter line without a comment: {line!r}"


def test_coerce_types():
    assert params.coerce("epochs", "3", 5) == 3
    assert params.coerce("lr", "1e-3", 0.1) == pytest.approx(1e-3)
    assert params.coerce("lr", "2", 0.1) == 2.0
    assert isinstance(params.coerce("lr", "2", 0.1), float)
    assert params.coerce("model", "123", "edsr") == "123"
    assert params.coerce("flag", "true", False) is True
    assert params.coerce("kw", "{num_block: 4}", {}) == {"num_block": 4}
    with pytest.raises(ValueError, match="epochs"):
        params.coerce("epochs", "many", 5)


def test_resolve_rejects_unknown_names():
    with pytest.raises(KeyError, match="known"):
        params.resolve("train", {"epohcs": "2"})
    r = params.resolve("train", {"epochs": "2"})
    assert r["epochs"] == 2
    assert r["model"] == "edsr_baseline"


def test_unknown_notebook_lists_known():
    with pytest.raises(FileNotFoundError, match="train"):
        params.notebook_path("nope")


@pytest.mark.parametrize("nb", sorted(p.stem for p in params.NOTEBOOKS_DIR.glob("*.ipynb")))
def test_papermill_reads_every_parameter_of_every_notebook(nb):
    """papermill's own parser must see the same names (a comment it cannot parse drops a parameter silently)."""
    import papermill as pm

    seen = pm.inspect_notebook(str(params.notebook_path(nb)))
    assert list(seen) == list(params.notebook_defaults(nb))
