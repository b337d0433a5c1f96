#!/usr/bin/env python3
"""A local stand-in for API Gateway's WebSocket API, for `scripts/dev` and the tests.

`cargo lambda watch` serves no WebSockets and `sam local` needs Docker, so this plays the part
of the deployed `RealtimeApi` (template.yaml) on a loopback port:

* WebSocket clients connect to ws://127.0.0.1:PORT/live?ticket=...; each connection gets an id,
  and the function is invoked with real API Gateway WebSocket proxy events, through the Lambda
  invoke API (`cargo lambda watch`'s, or a test's):
  - `$connect` on the handshake: a non-2xx answer refuses it with that status, as API Gateway
    does;
  - `$default` for every message; the function's answer body goes back on the socket (the
    template's two-way route response);
  - `$disconnect` when the socket closes, from either side.
* The Management API on the same port, where the functions' SigV4-signed calls go
  (`REALTIME_MANAGEMENT_URL=http://127.0.0.1:PORT/live`): `POST /live/@connections/{id}` sends
  its body as a text frame, `DELETE` closes the socket, `GET` describes it; an unknown id is
  410 Gone. A request that is not SigV4-signed for `execute-api` is refused with 403.
* API Gateway's limits that matter to clients: a connection idle for `--idle-timeout` seconds
  (600) or older than `--max-lifetime` (7200) is closed.

Prints `listening on PORT` once ready (with `--port 0` the OS picks it). aiohttp only (it comes
with localstripe in the dev venv).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import os
import secrets
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, ClientTimeout, WSMsgType, web

# The first invoke under `cargo lambda watch` waits for the function to compile.
INVOKE_TIMEOUT = 900


def log(message: str) -> None:
    stamp = dt.datetime.now().strftime("%H:%M:%S")
    print(f"{stamp} ws-gateway: {message}", flush=True)


@dataclass
class Connection:
    id: str
    socket: web.WebSocketResponse
    source_ip: str
    connected_at: float = field(default_factory=time.time)
    last_active: float = field(default_factory=time.time)


class Gateway:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.connections: dict[str, Connection] = {}
        self.http: ClientSession | None = None
        self.api_id = "local"

    # ------------------------------------------------------------ Lambda events

    def event(
        self,
        route: str,
        event_type: str,
        connection_id: str,
        request: web.Request | None,
        source_ip: str,
        body: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        now = time.time()
        context: dict[str, Any] = {
            "routeKey": route,
            "eventType": event_type,
            "extendedRequestId": secrets.token_urlsafe(12),
            "requestTime": dt.datetime.now(dt.timezone.utc).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "messageDirection": "IN",
            "stage": self.args.stage,
            "connectedAt": int(self.connections[connection_id].connected_at * 1000)
            if connection_id in self.connections
            else int(now * 1000),
            "requestTimeEpoch": int(now * 1000),
            "identity": {"sourceIp": source_ip, "userAgent": request.headers.get("User-Agent") if request else None},
            "requestId": str(uuid.uuid4()),
            "domainName": f"127.0.0.1:{self.args.port}",
            "connectionId": connection_id,
            "apiId": self.api_id,
        }
        context.update(extra or {})
        event: dict[str, Any] = {"requestContext": context, "isBase64Encoded": False}
        if request is not None and route == "$connect":
            headers = {k: v for k, v in request.headers.items()}
            event["headers"] = headers
            event["multiValueHeaders"] = {k: request.headers.getall(k) for k in request.headers.keys()}
            if request.query:
                event["queryStringParameters"] = {k: v for k, v in request.query.items()}
                event["multiValueQueryStringParameters"] = {
                    k: request.query.getall(k) for k in request.query.keys()
                }
        if body is not None:
            event["body"] = body
        return event

    async def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        assert self.http is not None
        url = f"{self.args.invoke_url.rstrip('/')}/2015-03-31/functions/{self.args.function}/invocations"
        async with self.http.post(url, json=event) as response:
            text = await response.text()
            if response.status != 200:
                raise RuntimeError(f"invoke answered {response.status}: {text[:300]}")
            answer = json.loads(text) if text else {}
            if isinstance(answer, dict) and "errorType" in answer:
                raise RuntimeError(f"the function failed: {text[:300]}")
            return answer if isinstance(answer, dict) else {}

    @staticmethod
    def body_of(answer: dict[str, Any]) -> str | None:
        body = answer.get("body")
        if body is None:
            return None
        if answer.get("isBase64Encoded"):
            return base64.b64decode(body).decode("utf-8", "replace")
        return str(body)

    # ------------------------------------------------------------ WebSocket side

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        connection_id = base64.b64encode(secrets.token_bytes(12)).decode()
        source_ip = request.remote or "127.0.0.1"
        try:
            answer = await self.invoke(
                self.event("$connect", "CONNECT", connection_id, request, source_ip)
            )
        except Exception as err:  # noqa: BLE001 - any failure refuses the handshake, as in AWS
            log(f"$connect failed: {err}")
            return web.Response(status=500, text="Internal server error")
        status = int(answer.get("statusCode", 200))
        if not 200 <= status < 300:
            log(f"{connection_id} refused with {status}")
            return web.Response(
                status=status,
                text=self.body_of(answer) or "",
                content_type="application/json",
            )
        socket = web.WebSocketResponse(max_msg_size=128 * 1024)
        await socket.prepare(request)
        connection = Connection(connection_id, socket, source_ip)
        self.connections[connection_id] = connection
        log(f"{connection_id} connected ({len(self.connections)} open)")
        reason, code = "client closed", 1000
        try:
            async for message in socket:
                connection.last_active = time.time()
                if message.type == WSMsgType.TEXT:
                    await self.default_route(connection, message.data)
                elif message.type == WSMsgType.BINARY:
                    await self.default_route(connection, message.data, binary=True)
                elif message.type == WSMsgType.ERROR:
                    reason, code = "error", 1006
                    break
        finally:
            self.connections.pop(connection_id, None)
            if socket.close_code is not None:
                code = socket.close_code
            try:
                await self.invoke(
                    self.event(
                        "$disconnect",
                        "DISCONNECT",
                        connection_id,
                        None,
                        source_ip,
                        extra={"disconnectStatusCode": code, "disconnectReason": reason},
                    )
                )
            except Exception as err:  # noqa: BLE001 - best effort, as in AWS
                log(f"$disconnect failed for {connection_id}: {err}")
            log(f"{connection_id} disconnected ({len(self.connections)} open)")
        return socket

    async def default_route(self, connection: Connection, data: Any, binary: bool = False) -> None:
        if binary:
            event = self.event("$default", "MESSAGE", connection.id, None, connection.source_ip,
                               base64.b64encode(data).decode())
            event["isBase64Encoded"] = True
        else:
            event = self.event("$default", "MESSAGE", connection.id, None, connection.source_ip, data)
        event["requestContext"]["messageId"] = secrets.token_urlsafe(12)
        try:
            answer = await self.invoke(event)
        except Exception as err:  # noqa: BLE001
            log(f"$default failed for {connection.id}: {err}")
            await connection.socket.send_str(
                json.dumps({"message": "Internal server error", "connectionId": connection.id})
            )
            return
        body = self.body_of(answer)
        if body is not None and not connection.socket.closed:
            await connection.socket.send_str(body)

    # ------------------------------------------------------------ Management API

    @staticmethod
    def signed(request: web.Request) -> bool:
        authorization = request.headers.get("Authorization", "")
        return authorization.startswith("AWS4-HMAC-SHA256 ") and "/execute-api/aws4_request" in authorization

    async def management(self, request: web.Request) -> web.StreamResponse:
        if not self.signed(request):
            return web.json_response({"message": "Missing Authentication Token"}, status=403)
        connection = self.connections.get(request.match_info["id"])
        if connection is None or connection.socket.closed:
            return web.json_response({"message": "GoneException"}, status=410)
        if request.method == "POST":
            data = await request.read()
            if len(data) > 128 * 1024:
                return web.json_response({"message": "PayloadTooLargeException"}, status=413)
            await connection.socket.send_str(data.decode("utf-8", "replace"))
            return web.Response(status=200)
        if request.method == "DELETE":
            await connection.socket.close(code=1000, message=b"Going away")
            return web.Response(status=204)
        return web.json_response(
            {
                "connectedAt": dt.datetime.fromtimestamp(connection.connected_at, dt.timezone.utc).isoformat(),
                "lastActiveAt": dt.datetime.fromtimestamp(connection.last_active, dt.timezone.utc).isoformat(),
                "identity": {"sourceIp": connection.source_ip},
            }
        )

    # ------------------------------------------------------------ API Gateway's limits

    async def reaper(self) -> None:
        while True:
            await asyncio.sleep(1)
            now = time.time()
            for connection in list(self.connections.values()):
                idle = now - connection.last_active > self.args.idle_timeout
                old = now - connection.connected_at > self.args.max_lifetime
                if idle or old:
                    log(f"{connection.id} closed by the gateway ({'idle' if idle else 'lifetime'})")
                    await connection.socket.close(code=1001, message=b"Going away")


async def main(args: argparse.Namespace) -> None:
    gateway = Gateway(args)
    gateway.http = ClientSession(timeout=ClientTimeout(total=INVOKE_TIMEOUT))
    app = web.Application()
    for prefix in (f"/{args.stage}", ""):
        app.router.add_route("*", f"{prefix}/@connections/{{id}}", gateway.management)
    app.router.add_get(f"/{args.stage}", gateway.websocket)
    app.router.add_get("/", gateway.websocket)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    sockets = site._server.sockets if site._server else []  # noqa: SLF001 - the chosen port
    args.port = sockets[0].getsockname()[1] if sockets else args.port
    print(f"listening on {args.port}", flush=True)
    log(f"ws://{args.host}:{args.port}/{args.stage} -> {args.function} at {args.invoke_url}")
    reaper = asyncio.create_task(gateway.reaper())
    try:
        await asyncio.Event().wait()
    finally:
        reaper.cancel()
        await gateway.http.close()
        await runner.cleanup()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("REALTIME_PORT", "9001")))
    parser.add_argument("--stage", default="live")
    parser.add_argument("--function", default="realtime")
    parser.add_argument(
        "--invoke-url",
        default=os.environ.get("LAMBDA_INVOKE_URL", "http://127.0.0.1:9000"),
        help="base URL of the Lambda invoke API (env LAMBDA_INVOKE_URL)",
    )
    parser.add_argument("--idle-timeout", type=float, default=600)
    parser.add_argument("--max-lifetime", type=float, default=7200)
    return parser.parse_args()


if __name__ == "__main__":
    try:
        asyncio.run(main(parse_args()))
    except KeyboardInterrupt:
        sys.exit(0)
