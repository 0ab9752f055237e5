"""The default thread policy: the usable CPUs less those other processes keep busy (issue 15.17)."""

import os
import subprocess
import sys
import time

import pytest

from contrec.runtime.threads import busy_cpus, default_threads, pinned_threads, usable_cpus


def test_usable_cpus_follow_the_affinity_mask():
    assert usable_cpus() == len(os.sched_getaffinity(0))


@pytest.mark.skipif(usable_cpus() < 2, reason="needs two CPUs")
def test_a_busy_neighbour_takes_one_thread_away():
    spinner = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 30\nwhile time.time() < end: pass"])
    try:
        time.sleep(0.5)
        assert busy_cpus(0.3) >= 0.7
        assert default_threads() <= usable_cpus() - 1  # one fewer (or more, if something else is busy too)
    finally:
        spinner.kill()
        spinner.wait()


@pytest.mark.skipif(usable_cpus() < 2, reason="needs two CPUs")
def test_this_process_own_spinning_threads_do_not_count_as_a_busy_neighbour():
    import threading

    stop = time.time() + 0.6
    # a worker of this very process, as torch's OpenMP threads spin for a while after a fit's last step
    spinner = threading.Thread(target=lambda: [None for _ in iter(lambda: time.time() < stop, False)])
    spinner.start()
    try:
        assert busy_cpus(0.3) < 0.5
    finally:
        spinner.join()


@pytest.mark.skipif(usable_cpus() < 2, reason="needs two CPUs")
def test_a_default_fit_keeps_its_threads_after_its_carve_fits():
    import contrec
    from contrec.data.synthetic import synthetic_interactions

    # the refit's count is decided right after the carve fits, whose OpenMP workers are still spinning
    data = synthetic_interactions(600, 400, 30_000, seed=0)
    model = contrec.ContrastiveRecommender(dim=64, epochs=2, user_tower="id", verbose=False).fit(data)
    assert model.threads_ == default_threads() == usable_cpus()


def test_pinned_threads_restores_what_was_set():
    import faiss
    import torch
    from threadpoolctl import threadpool_info

    def blas_threads():
        return [pool["num_threads"] for pool in threadpool_info()]

    before = torch.get_num_threads(), faiss.omp_get_max_threads(), blas_threads()
    with pinned_threads(1, blas=True):
        assert torch.get_num_threads() == 1 and faiss.omp_get_max_threads() == 1
        assert set(blas_threads()) == {1}
    assert (torch.get_num_threads(), faiss.omp_get_max_threads(), blas_threads()) == before
    with pinned_threads(None):  # nothing asked, nothing changed
        assert (torch.get_num_threads(), faiss.omp_get_max_threads(), blas_threads()) == before


def test_retained_heap_tunes_glibc_once_and_leaves_its_settled_thresholds(monkeypatch):
    import platform

    from contrec.runtime import heap

    calls: list[tuple] = []

    class Recorder:  # stands in for libc: what the block asks of malloc, in order
        def mallopt(self, param, value):
            calls.append(("mallopt", param, value))
            return 1

        def malloc_trim(self, pad):
            calls.append(("trim", pad))
            return 1

    monkeypatch.setattr(heap, "_libc", lambda: Recorder())
    with heap.retained_heap() as tuned:
        with heap.retained_heap():  # a carve fit inside a fit: nothing more
            pass
        assert tuned and calls == [("mallopt", -3, heap.MMAP_THRESHOLD), ("mallopt", -1, heap.TRIM_THRESHOLD)]
    assert calls[2:] == [("mallopt", -3, 32 << 20), ("mallopt", -1, 64 << 20), ("trim", 0)]
    calls.clear()
    with pytest.raises(KeyError):  # an error inside still restores
        with heap.retained_heap():
            raise KeyError("x")
    assert calls[-1] == ("trim", 0) and heap._depth == 0
    monkeypatch.undo()
    # the real libc: tuned on glibc Linux, left alone when the user chose the thresholds or opted out
    with heap.retained_heap() as real:
        assert real == (platform.system() == "Linux" and platform.libc_ver()[0] == "glibc")
    for name, value in (("MALLOC_TRIM_THRESHOLD_", "1000000"), ("CONTREC_RETAIN_HEAP", "0")):
        with monkeypatch.context() as m:
            m.setenv(name, value)
            with heap.retained_heap() as chosen:
                assert not chosen
