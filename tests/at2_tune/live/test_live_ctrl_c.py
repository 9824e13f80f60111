"""``at2-tune tune`` and Ctrl-C: the run stops as Tune stops it, and is recorded as interrupted
(``at2_tune.live.run.ctrl_c_recorded``; end to end in ``test_live_run.py``)."""

from __future__ import annotations

import os
import signal

import pytest

from at2_tune.live.run import ctrl_c_recorded


def test_ctrl_c_asks_tune_to_stop_and_is_recorded_then_a_second_one_raises(monkeypatch):
    monkeypatch.delenv("TUNE_DISABLE_SIGINT_HANDLER", raising=False)
    stops = []
    before_usr1 = signal.signal(signal.SIGUSR1, lambda *_: stops.append("tune stops"))
    before_int = signal.getsignal(signal.SIGINT)
    try:
        with ctrl_c_recorded() as ctrl_c:
            assert os.environ["TUNE_DISABLE_SIGINT_HANDLER"] == "1"  # Tune's handler stays out
            assert not ctrl_c.received
            os.kill(os.getpid(), signal.SIGINT)  # Tune listens: it is asked to stop
            assert ctrl_c.received and stops == ["tune stops"]
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)  # the second one does not wait
        assert signal.getsignal(signal.SIGINT) is before_int
        assert "TUNE_DISABLE_SIGINT_HANDLER" not in os.environ
    finally:
        signal.signal(signal.SIGUSR1, before_usr1)


def test_ctrl_c_before_tune_listens_raises_at_once():
    before_usr1 = signal.signal(signal.SIGUSR1, signal.SIG_DFL)  # the default would kill us
    try:
        with pytest.raises(KeyboardInterrupt):
            with ctrl_c_recorded() as ctrl_c:
                os.kill(os.getpid(), signal.SIGINT)
        assert not ctrl_c.received
    finally:
        signal.signal(signal.SIGUSR1, before_usr1)
