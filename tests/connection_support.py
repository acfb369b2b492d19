"""Helpers for the tests of the sans-I/O connection, in either build (``connection_module``
in conftest.py)."""

from __future__ import annotations

from typing import Any


def open_pair(
    module: Any, client_extensions: Any = (), server_extensions: Any = (), **kwargs: Any
) -> tuple[Any, Any]:
    """A client and a server of ``module`` after a completed handshake (``kwargs``: the same
    options on both sides)."""
    client = module.ClientConnection("example.com", extensions=client_extensions, **kwargs)
    server = module.ServerConnection(extensions=server_extensions, **kwargs)
    server.receive_data(client.data_to_send())
    server.events()
    server.accept()
    client.receive_data(server.data_to_send())
    client.events()
    assert client.state is module.State.OPEN and server.state is module.State.OPEN
    return client, server
