"""Silencing what native libraries print to stderr for the length of a block."""

import contextlib
import os
import sys
import tempfile

from absl import logging


@contextlib.contextmanager
def quiet():
    """Keeps what Orbax and TensorStore print while failing (log lines, their threads' tracebacks)
    off the terminal: stderr, at the file descriptor, goes to a discarded file for the block."""
    verbosity = logging.get_verbosity()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        logging.set_verbosity(logging.FATAL)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            logging.set_verbosity(verbosity)
