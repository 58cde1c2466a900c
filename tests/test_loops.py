"""The stoppable loops the poller and the activity sync run in: a stop ends every wait, quietly."""

from __future__ import annotations

import threading

import pytest

from exporter.loops import Loops, Stopped, run_guarded


def test_a_stop_ends_every_sleeping_loop_and_wakes_their_events() -> None:
    loops = Loops()
    woken = threading.Event()
    asleep = threading.Barrier(3)

    def sleeper() -> None:
        asleep.wait()
        loops.sleep(3600)

    def waiter() -> None:
        asleep.wait()
        woken.wait()
        loops.check()

    loops.start("one", sleeper)
    loops.start("two", waiter)
    asleep.wait()
    loops.stop(30.0, wake=(woken,))
    assert loops.stopping
    assert not any(t.is_alive() for t in loops._threads)


def test_sleep_raises_stopped_once_stopping() -> None:
    loops = Loops()
    loops.sleep(0)  # not stopping: returns
    loops.stop(0)
    with pytest.raises(Stopped):
        loops.sleep(3600)
    with pytest.raises(Stopped):
        loops.check()


def test_a_guarded_job_starts_over_after_an_error_slower_each_time(caplog: pytest.LogCaptureFixture) -> None:
    loops = Loops()
    runs: list[int] = []
    pauses: list[int] = []

    def job() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError("a bug")

    def pause(errors: int) -> float:
        pauses.append(errors)
        return 0.0

    run_guarded(loops, job, "the test loop", pause)
    assert len(runs) == 3
    assert pauses == [1, 2]
    assert "unexpected error in the test loop (2 in a row)" in caplog.text


def test_a_stop_during_a_guarded_pause_ends_the_job() -> None:
    loops = Loops()
    runs: list[int] = []

    def job() -> None:
        runs.append(1)
        loops.stop(0)  # asked to stop while failing: the pause must not start the job again
        raise RuntimeError("a bug")

    with pytest.raises(Stopped):
        run_guarded(loops, job, "the test loop", lambda errors: 3600.0)
    assert runs == [1]
