"""The emulator's own certificate authority: kubectl sends a bearer token only over TLS.

trustme makes a throwaway CA and a server certificate for 127.0.0.1 and localhost at start;
the kubeconfig carries the CA (`certificate-authority-data`), as a real cluster's does, so
clients verify the server instead of being told to skip verification.
"""

from __future__ import annotations

import base64
import ssl

import trustme


class ServerTls:
    """A fresh CA and a server certificate signed by it, for one emulator."""

    def __init__(self) -> None:
        self._ca = trustme.CA(organization_name="opsloop Kubernetes emulator")
        self._server = self._ca.issue_cert("127.0.0.1", "localhost", "::1")

    @property
    def ca_pem(self) -> bytes:
        return self._ca.cert_pem.bytes()

    @property
    def ca_data(self) -> str:
        """The CA as a kubeconfig's `certificate-authority-data` (base64 of the PEM)."""
        return base64.b64encode(self.ca_pem).decode("ascii")

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._server.configure_cert(context)
        # aiohttp speaks HTTP/1.1 only; saying so keeps Go clients from trying HTTP/2.
        context.set_alpn_protocols(["http/1.1"])
        return context

    def client_context(self) -> ssl.SSLContext:
        """An SSL context that trusts this CA (for tests calling the emulator with aiohttp)."""
        context = ssl.create_default_context()
        self._ca.configure_trust(context)
        return context
