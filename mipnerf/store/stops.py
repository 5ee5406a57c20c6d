"""Ctrl-C and SIGTERM as a flag that a loop reads after each step, so that it saves a checkpoint
before it stops (training, the splats' fit), instead of an exception raised wherever it is."""

import contextlib
import signal


class StopRequests:
    """`requested`: the number of the stop signal received while `installed`, or None."""

    def __init__(self):
        self.requested = None

    def _handle(self, signum, frame):
        self.requested = signum

    @property
    def name(self) -> str:
        """The signal's name (SIGINT, SIGTERM)."""
        return signal.Signals(self.requested).name

    @contextlib.contextmanager
    def installed(self):
        previous = {s: signal.signal(s, self._handle) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
