"""The SDK's public surface: what `qroute` exports, and that importing the contracts stays light."""

from __future__ import annotations

import subprocess
import sys

import qroute
import qroute.client


class TestExports:
    def test_sdk_names_are_exported_from_qroute(self) -> None:
        """`from qroute import QRouteClient, SyncQRouteClient, JobRejected, ResultTimeout` works."""
        from qroute import JobRejected, QRouteClient, ResultTimeout, SyncQRouteClient

        assert QRouteClient is qroute.client.QRouteClient
        assert SyncQRouteClient is qroute.client.SyncQRouteClient
        assert issubclass(JobRejected, qroute.client.ClientError)
        assert issubclass(ResultTimeout, TimeoutError)
        assert {"QRouteClient", "SyncQRouteClient", "JobRejected", "ResultTimeout", "Job", "Result"} <= set(
            qroute.__all__
        )

    def test_every_listed_name_resolves(self) -> None:
        """Each name in `__all__` of `qroute` and `qroute.client` is importable."""
        for module in (qroute, qroute.client):
            for name in module.__all__:
                assert getattr(module, name) is not None

    def test_unknown_attribute_is_an_attribute_error(self) -> None:
        """The lazy exports do not swallow typos."""
        assert not hasattr(qroute, "QRouteClientt")

    def test_importing_the_contracts_does_not_load_the_sdk(self) -> None:
        """`import qroute.models` leaves FastStream unloaded until the SDK is used."""
        code = "import sys, qroute.models; print('faststream' in sys.modules)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "False"
