import pytest

from contrec.errors import ConfigError, NotFittedError
from contrec.samplers import SAMPLERS, UniformSampler, get_sampler

from .contracts import SamplerContract


class TestUniform(SamplerContract):
    def make_sampler(self):
        return UniformSampler()


def test_registry_lists_choices():
    assert get_sampler("uniform").name == "uniform" and "uniform" in SAMPLERS
    with pytest.raises(ConfigError, match=r"unknown sampler 'popular'; choose one of: uniform"):
        get_sampler("popular")


def test_unfitted_sampler_says_so(torch_generator):
    import torch

    with pytest.raises(NotFittedError):
        UniformSampler().sample(torch.tensor([0]), torch.tensor([0]), 3, torch_generator)
