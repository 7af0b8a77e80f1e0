"""Reading another process's CPU time and memory from /proc text."""

from __future__ import annotations

import os

import pytest

from qroute.bench.procfs import ProcError, cpu_seconds, parse_cpu_ticks, parse_status_kib, peak_rss_bytes

# proc(5): pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
STAT = "4242 (python3) S 1 4242 4242 0 -1 4194304 9000 0 12 0 1500 230 0 0 20 0 9 0 100 0 0"


class TestParseStat:
    """utime + stime are read by position, counted after the command name."""

    def test_utime_plus_stime(self) -> None:
        """1500 user + 230 system ticks."""
        assert parse_cpu_ticks(STAT) == 1730

    def test_command_name_with_spaces_and_parens(self) -> None:
        """A command name like `a) b (c` does not shift the fields."""
        tricky = STAT.replace("(python3)", "(a) b (c)")
        assert parse_cpu_ticks(tricky) == 1730

    def test_truncated_text_is_an_error(self) -> None:
        """Text without the fields raises ProcError."""
        with pytest.raises(ProcError):
            parse_cpu_ticks("4242 (python3) S 1")


class TestParseStatus:
    """`Key: N kB` lines of /proc/PID/status."""

    STATUS = "Name:\tpython3\nVmPeak:\t  900000 kB\nVmHWM:\t   95012 kB\nVmRSS:\t   80100 kB\n"

    def test_peak_and_current(self) -> None:
        """VmHWM and VmRSS are read in KiB, not confused with VmPeak."""
        assert parse_status_kib(self.STATUS, "VmHWM") == 95012
        assert parse_status_kib(self.STATUS, "VmRSS") == 80100

    def test_missing_key(self) -> None:
        """An absent key raises ProcError."""
        with pytest.raises(ProcError):
            parse_status_kib(self.STATUS, "VmSwap")


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux /proc")
class TestLiveProcess:
    """The readers work on a real process (this one)."""

    def test_own_process(self) -> None:
        """This test process has used some CPU and some memory."""
        assert cpu_seconds(os.getpid()) > 0
        assert peak_rss_bytes(os.getpid()) > 1024 * 1024

    def test_gone_process(self) -> None:
        """A pid that does not exist raises ProcError, not OSError."""
        with pytest.raises(ProcError):
            cpu_seconds(2**22 + 1)
