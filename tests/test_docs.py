"""Every example in contrec's docstrings runs and prints what it says (those marked +SKIP need data or processes)."""

import doctest
import importlib
import pkgutil

import pytest

import contrec

MODULES = sorted(m.name for m in pkgutil.walk_packages(contrec.__path__, "contrec.") if m.name != "contrec.__main__")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS, verbose=False,
                             report=True)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed"
