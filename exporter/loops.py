"""Background loops that stop together: daemon threads sharing one stop signal, and a stoppable sleep.

The poller and the activity sync each run a few loops; a stop must end every wait at once (a sleep, a
rate-limit gate, a Retry-After pause) without being counted as a failure on the way out.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Stopped(BaseException):
    """Raised inside a wait when the loops are asked to stop.

    A BaseException, so that no `except Exception` on the way out can count a stop as a failed poll.
    """


def sleep_unless_stopped(stop: threading.Event, seconds: float) -> None:
    """Sleep for `seconds` on the stop event, so that a shutdown ends the sleep; raise Stopped then."""
    if stop.wait(seconds):
        raise Stopped


class Loops:
    """Daemon threads that share one stop signal; each ends quietly when it raises Stopped."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def stopping(self) -> bool:
        """Whether stop() has been called."""
        return self._stop.is_set()

    @property
    def stop_event(self) -> threading.Event:
        """The stop signal itself, for waits that take an event (the retries' tenacity stop)."""
        return self._stop

    def start(self, name: str, job: Callable[[], None]) -> None:
        """Run `job` in a daemon thread called `name` until it returns or raises Stopped."""
        thread = threading.Thread(target=self._run, args=(job,), name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def stop(self, timeout: float, *, wake: tuple[threading.Event, ...] = ()) -> None:
        """Signal every loop (and set `wake`, events loops wait on) and wait up to `timeout` in all.

        A thread stuck in a request is a daemon and dies with the process.
        """
        self._stop.set()
        for event in wake:
            event.set()
        end = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, end - time.monotonic()))

    def sleep(self, seconds: float) -> None:
        """Wait `seconds`, or raise Stopped as soon as the loops are asked to stop."""
        sleep_unless_stopped(self._stop, seconds)

    def check(self) -> None:
        """Raise Stopped if the loops are asked to stop."""
        if self._stop.is_set():
            raise Stopped

    @staticmethod
    def _run(job: Callable[[], None]) -> None:
        with contextlib.suppress(Stopped):
            job()


def run_guarded(loops: Loops, job: Callable[[], None], what: str, pause: Callable[[int], float]) -> None:
    """Run `job` until it returns; an unexpected error is logged and the job started again after
    `pause(errors in a row)` seconds, so a bug can neither end the loop for good nor spin it."""
    errors = 0
    while True:
        try:
            job()
            return
        except Exception:  # a bug must not kill the loop: log it and start over, slower
            errors += 1
            log.exception("unexpected error in %s (%d in a row)", what, errors)
            loops.sleep(pause(errors))
