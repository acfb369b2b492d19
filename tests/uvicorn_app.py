"""A Starlette application for the uvicorn tests (run by uvicorn in a subprocess).

- ``/``: echo; text stays text, bytes stay bytes, until the client closes.
- ``/info``: accepts with the first subprotocol offered and an extra header, sends what the
  scope said (JSON), then closes with 4001 "done".
- ``/deny``: refuses the handshake with the application's own 403 response (ASGI's
  ``websocket.http.response`` extension).
"""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect


async def echo(ws: WebSocket) -> None:
    await ws.accept()
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await ws.send_text(message["text"])
            else:
                await ws.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        return


async def info(ws: WebSocket) -> None:
    offered = ws.scope["subprotocols"]
    await ws.accept(subprotocol=offered[0] if offered else None, headers=[(b"x-app", b"yes")])
    scope = ws.scope
    await ws.send_text(
        json.dumps(
            {
                "path": scope["path"],
                "raw_path": scope["raw_path"].decode("ascii"),
                "query_string": scope["query_string"].decode("ascii"),
                "subprotocols": offered,
                "scheme": scope["scheme"],
                "client": scope["client"][0],
                "extensions": sorted(scope["extensions"]),
                "header_names": [name.decode("ascii") for name, _ in scope["headers"]],
            }
        )
    )
    await ws.close(4001, "done")


async def deny(ws: WebSocket) -> None:
    await ws.send_denial_response(PlainTextResponse("go away", status_code=403))


app = Starlette(
    routes=[WebSocketRoute("/", echo), WebSocketRoute("/info", info), WebSocketRoute("/deny", deny)]
)
