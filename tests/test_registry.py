"""Registries: one lookup and one error wording for samplers, similarities, baselines and encoder presets."""

import pytest

from contrec.errors import ConfigError
from contrec.models.baselines import BASELINES
from contrec.nn.encoders import ENCODER_PRESETS
from contrec.nn.similarity import SIMILARITIES
from contrec.registry import Registry
from contrec.samplers import SAMPLERS


@pytest.mark.parametrize("registry,kind", [(SAMPLERS, "sampler"), (SIMILARITIES, "similarity"),
                                           (BASELINES, "baseline"), (ENCODER_PRESETS, "encoder")])
def test_every_registry_words_a_wrong_name_the_same_way(registry, kind):
    with pytest.raises(ConfigError) as err:
        registry.key("nope")
    assert str(err.value) == f"unknown {kind} 'nope'; choose one of: {', '.join(registry)}"


def test_wrong_parameters_name_the_entry():
    with pytest.raises(ConfigError, match="^sampler 'popularity': .*'beta'"):
        SAMPLERS.create("popularity", beta=1)
    with pytest.raises(ConfigError, match="^baseline 'EASE': .*'lambda_'"):
        BASELINES.create("EASE", lambda_=1)  # a name is normalised (EASE, ease) before it is looked up


def test_registering_a_plug_in():
    colours = Registry("colour", {"red": dict})
    assert colours.register("blue", list) is list and colours.names() == ["red", "blue"]
    assert colours.knows("blue") and not colours.knows("green") and colours.create("blue") == []
    with pytest.raises(ConfigError, match="a colour named 'red' is registered already"):
        colours.register("red", set)
