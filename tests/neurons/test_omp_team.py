"""The CPU kernels' threads are torch's own OpenMP team (``omp_team``): bodies run once per thread
index, on threads torch already has, and a body's exception reaches the caller."""

import os
import threading

import pytest
import torch

from lit_snn.neurons.cpu import omp_team


@pytest.fixture
def team(monkeypatch):
    monkeypatch.delenv("LIT_SNN_CPU_OWN_POOL", raising=False)
    monkeypatch.setattr(omp_team, "_TEAM", [])
    found = omp_team.team()
    if found is None:
        backend = torch.__config__.parallel_info().splitlines()[-1]
        pytest.skip(f"torch's OpenMP runtime is not a libgomp beside it ({backend})")
    before = torch.get_num_threads()
    yield found
    torch.set_num_threads(before)


def _threads_of_this_process() -> set[int]:
    return {int(t) for t in os.listdir("/proc/self/task")}


def test_each_thread_index_runs_once_on_torchs_own_threads(team):
    torch.set_num_threads(3)
    torch.ones(1 << 22).mul_(2.0).sum()  # a parallel op: torch's team of 3 exists now
    existing = _threads_of_this_process()
    calls: list[tuple[int, int]] = []
    lock = threading.Lock()

    def body(i: int) -> None:
        with lock:
            calls.append((i, threading.get_native_id()))

    team.run(body, 3)
    assert sorted(i for i, _ in calls) == [0, 1, 2]
    assert len({tid for _, tid in calls}) == 3
    assert dict(calls)[0] == threading.get_native_id()  # index 0 is the calling thread
    assert {tid for _, tid in calls} <= existing  # no thread of its own: torch's workers took the work
    assert _threads_of_this_process() == existing


def test_a_body_error_is_raised_by_run_and_the_team_stays_usable(team):
    def body(i: int) -> None:
        if i == 1:
            raise ValueError(f"planted on thread {i}")

    with pytest.raises(ValueError, match="planted on thread 1"):
        team.run(body, 2)
    seen = []
    team.run(seen.append, 2)
    assert sorted(seen) == [0, 1]


def test_own_pool_is_kept_where_asked(monkeypatch):
    monkeypatch.setenv("LIT_SNN_CPU_OWN_POOL", "1")
    monkeypatch.setattr(omp_team, "_TEAM", [])
    assert omp_team.team() is None
