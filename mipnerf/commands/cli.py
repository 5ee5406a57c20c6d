"""What the entry points share: bad flags and user errors become one line on stderr and an exit code.

Exit codes: 0 done; 1 bad input or an unrecoverable fault (a full disk, a damaged checkpoint
with nothing to fall back on); 130 stopped by Ctrl-C; 143 stopped by SIGTERM. Training saves a
checkpoint before it stops on either signal.

With the environment variable MIPNERF_DEBUG=1, a user error or an `OSError` also prints its
traceback before its line: an `OSError` may come from a bug rather than a file the user named.
"""

import os
import re
import signal
import sys
import threading
import traceback

from absl import app, flags, logging
from ml_collections import config_flags

from mipnerf.errors import MipNerfError
from mipnerf.store.cache import enable_compilation_cache


def _fail(message: str, code: int = 1, prefix: str = "error: ") -> None:
    print(f"{prefix}{message}", file=sys.stderr)
    sys.exit(code)


_STOP_LINES = {signal.SIGINT: "interrupted (Ctrl-C)", signal.SIGTERM: "terminated (SIGTERM)"}


def _stop(signum: int) -> None:
    """Ends the process at once after a stop outside training's loop (whose own stop saves first and
    unwinds as a `MipNerfError`): the stack has unwound, so files and locks are closed, but the
    interpreter's teardown is skipped, which can crash while XLA still compiles or runs in another
    thread (a stop during eval's fit, seen once as a segmentation fault instead of exit code 130)."""
    print(_STOP_LINES[signum], file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(128 + signum)


DEBUG_VARIABLE = "MIPNERF_DEBUG"


def _debug() -> bool:
    """Whether MIPNERF_DEBUG=1 asks for the tracebacks of the errors otherwise printed as one line."""
    return os.environ.get(DEBUG_VARIABLE) == "1"


class _Terminated(BaseException):
    """SIGTERM outside the training loop (which saves first): stop where we are."""


STOP_GRACE_S = 10.0  # after a stop signal, the longest the process runs on if its exception is lost


def _stop_signal(signum, frame):
    """Ctrl-C or SIGTERM outside training's loop (whose own handlers save first): raises where the
    program is, to unwind it. Python drops an exception raised inside a finalizer (`__del__`), so a
    timer ends the process anyway after STOP_GRACE_S, as the unwinding would have."""
    timer = threading.Timer(STOP_GRACE_S, _stop, (signum,))
    timer.daemon = True
    timer.start()
    raise KeyboardInterrupt() if signum == signal.SIGINT else _Terminated()


def explicit_fields(argv) -> set[str]:
    """The config fields named on the command line: `--config.FIELD=VALUE` or `--config.FIELD VALUE`."""
    return {m.group(1) for a in argv[1:] for m in [re.match(r"--(?:no)?config\.(\w+)", a)] if m}


def _describe(e: BaseException, argv) -> str:
    """One line for an exception raised by config_flags while reading the --config flags."""
    text = str(e).replace("\\n", "\n").replace("\\'", "'")
    if isinstance(e, (KeyError, AttributeError)):
        field = re.search(r"[A-Za-z_][\w.]*", text)
        hint = re.search(r"Did you mean .*", text)
        hint = f" ({hint.group(0).rstrip(chr(39))})" if hint else ""
        return f"unknown config field {field.group(0) if field else text!r}{hint}"
    config = next((a.split("=", 1)[1] for a in argv[1:] if a.startswith("--config=")), None)
    if config is not None and "No such file" in text:
        return f"--config={config}: no such config file; expected a file like configs/demo.py"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "the --config flags could not be read: " + ("; ".join(lines) or type(e).__name__)


def _guard_flags(parse, argv):
    """Runs `parse`; an unknown config field, a bad value or a missing config file is one line, not a traceback."""
    try:
        return parse()
    except flags.Error as e:
        _fail(str(e))
    except Exception as e:  # config_flags raises plain AttributeError, KeyError, OSError, ...
        _fail(_describe(e, argv))


def define_config(default: str = "configs/demo.py"):
    """The `--config` flag (a config file, with `--config.FIELD=VALUE` overrides). The default file
    is found from any working directory: relative to the project when not relative to it."""
    if not os.path.exists(default):
        default = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", default)
    # config_flags reads the overrides in sys.argv as soon as the flag is defined.
    return _guard_flags(lambda: config_flags.DEFINE_config_file(
        "config", default, "Path to a config file; override fields with --config.FIELD=VALUE.", lock_config=True), sys.argv)


def run(main) -> None:
    """`absl.app.run(main)`, printing a `MipNerfError`, an `OSError` or a stop as one line instead
    of a traceback (a traceback too with MIPNERF_DEBUG=1), with the exit codes of the module docstring."""

    def guarded(argv):
        logging.set_verbosity(logging.WARNING)  # Orbax logs every file it writes at INFO
        for stop in (signal.SIGINT, signal.SIGTERM):
            signal.signal(stop, _stop_signal)
        enable_compilation_cache()
        try:
            main(argv)
        except MipNerfError as e:
            if _debug():
                traceback.print_exc()
            _fail(str(e), e.exit_code, e.prefix)
        except OSError as e:  # the machine's fault, outside any file we know to name, or a bug
            if _debug():
                traceback.print_exc()
            where = f": {e.filename}" if e.filename else ""
            _fail(f"{e.strerror or e}{where} ({DEBUG_VARIABLE}=1 prints where it happened)")
        except KeyboardInterrupt:
            _stop(signal.SIGINT)
        except _Terminated:
            _stop(signal.SIGTERM)

    app.run(guarded, flags_parser=lambda argv: _guard_flags(lambda: flags.FLAGS(argv), argv))
