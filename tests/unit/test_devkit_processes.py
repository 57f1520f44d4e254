"""The dev kit's process primitives: the one poller, the one free port, the one way to stop a process."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from rolesanywhere_devkit.processes import TimedOut, alive, free_port, stop, terminate, wait_for

#: A child that ignores SIGTERM, so only SIGKILL ends it; it says when the handler is in place.
STUBBORN = "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"


def test_wait_for_returns_the_first_truthy_value():
    answers = iter([None, 0, "found"])
    assert wait_for(lambda: next(answers), timeout=5, interval=0, what="an answer") == "found"


def test_wait_for_names_what_it_waited_for_on_timeout():
    with pytest.raises(TimedOut, match="timed out after 0s waiting for the moon"):
        wait_for(lambda: False, timeout=0.05, interval=0.01, what="the moon")


def test_free_port_is_bindable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", free_port()))


def test_terminate_stops_a_child_with_sigterm_and_gives_its_exit_code():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    assert terminate(child) == -15


def test_a_child_ignoring_sigterm_is_killed_after_the_grace_period():
    child = subprocess.Popen([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "ready\n"
    assert terminate(child, grace=0.2) == -9


def test_stop_by_pid_reaps_our_child():
    child = subprocess.Popen([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "ready\n"
    stop(child.pid, grace=0.2)
    assert not alive(child.pid)


def test_stopping_what_has_exited_is_a_no_op():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    stop(child, 999999999, grace=0)
    assert child.returncode == 0
