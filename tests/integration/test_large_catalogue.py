"""EASE and the embedding statistics on a 17,632-item catalogue: no crash, bounded memory (issue 15.8).

The OpenBLAS that numpy/scipy ship segfaulted here on the float64 solve at this size with
2 threads; the fit runs in a child process so that a crash is a failed test, not a dead
test run. Marked slow (about a minute): ``python -m pytest -m slow``.
"""

import json
import subprocess
import sys

import pytest

_FIT = r"""
import json, resource, time
import contrec
from contrec.data.synthetic import synthetic_play_log
from contrec.nn.diagnostics import embedding_diagnostics
log = synthetic_play_log(seed=0)
data = contrec.Interactions.from_frame(log.astype(str), user="userID", item="artistID")
train, test = contrec.split_random(data, test_size=0.2, seed=0)
t0 = time.perf_counter()
model = contrec.EASE().fit(train)
fit_s = time.perf_counter() - t0
table = contrec.evaluate(model, train, test, k=20)
diag = embedding_diagnostics(model)
print(json.dumps({"items": train.n_items, "fit_s": fit_s, "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
                  "ndcg": float(table.loc[table["metric"] == "ndcg", "value"].iloc[0]), "diag": diag}))
"""


@pytest.mark.slow
def test_ease_on_a_17k_item_catalogue_fits_in_a_few_gigabytes():
    done = subprocess.run([sys.executable, "-c", _FIT], capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])  # −11 would be the old segfault
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["items"] > 15_000
    assert out["peak_gb"] < 6.0, out  # float64 with copies peaked near 10 GB, the SVD statistics beyond
    assert 0.0 < out["ndcg"] < 1.0
    assert out["diag"]["alignment"] >= 0.0
