"""benchmarks/error_predictability.py: its error model and Mondrian scales on synthetic
posteriors whose errors are known to follow the std, or something else."""


import numpy as np
import pytest
from scipy import ndimage


@pytest.fixture(scope="module")
def script(benchmark_script):
    return benchmark_script("error_predictability")


def _images(script, n, error_follows, seed):
    """``n`` (features, |e|) pairs of 24 x 24 posteriors; the error's scale is the std
    (``"std"``) or the mean's gradient magnitude with an unrelated std (``"grad"``)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        mean = ndimage.gaussian_filter(rng.random((24, 24)), 2) * 4
        std = np.exp(ndimage.gaussian_filter(rng.normal(size=(24, 24)), 2) * 3) * 0.05
        f = script.pixel_features(mean, std)
        scale = f["std"] if error_follows == "std" else 0.02 + f["grad"]
        out.append((f, np.abs(rng.normal(size=scale.shape)) * scale))
    return out


def test_when_the_error_follows_the_std_nothing_beats_it(script):
    figures = script.split_figures(_images(script, 10, "std", 0), _images(script, 10, "std", 1))
    assert figures["std"] > 0.4
    assert abs(figures["error model"] - figures["std"]) < 0.05
    for key in ("Mondrian by grad", "Mondrian by mean"):
        m = figures[key]
        assert 0.87 < m["coverage"] < 0.93 and min(m["coverage_per_group"]) > 0.85
        assert max(m["scales"]) / min(m["scales"]) < 1.2  # one scale fits every group


def test_an_error_the_std_misses_is_found_by_the_model(script):
    figures = script.split_figures(_images(script, 10, "grad", 0),
                                   _images(script, 10, "grad", 1))
    assert figures["std"] < 0.2
    assert figures["error model"] > figures["std"] + 0.3
    m = figures["Mondrian by grad"]
    assert m["corr"] > figures["std"] + 0.2
    assert min(m["coverage_per_group"]) > 0.85
