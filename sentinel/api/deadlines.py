"""A deadline for reading a request body (``SENTINEL_HTTP_BODY_TIMEOUT_SEC``).

Granian closes a connection whose request headers do not arrive within ``SENTINEL_HTTP_HEADER_TIMEOUT_SEC``
(that timeout also ends idle keep-alive connections), but it waits for a body as long as the client keeps
sending, however slowly: a body dripped at a few bytes a second would hold a connection slot for minutes.
This middleware gives the whole body one deadline, counted from the start of the request; a body not
complete by then is answered **408** ``body_timeout`` with ``Connection: close``. Once the body is in,
``receive`` is passed through untouched (a live stream waits on it for the client's disconnect).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

from sentinel.api.problems import ApiProblem


def body_deadline_middleware(seconds: float) -> Callable[[ASGIApp], ASGIApp]:
    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            loop = asyncio.get_running_loop()
            deadline = loop.time() + seconds
            complete = False

            async def receive_by_deadline() -> ReceiveMessage:
                nonlocal complete
                if complete:
                    return await receive()
                try:
                    message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
                except TimeoutError:
                    raise ApiProblem(
                        408,
                        f"the request body did not arrive within {seconds:g}s",
                        code="body_timeout",
                        headers={"Connection": "close"},
                    ) from None
                if message["type"] != "http.request" or not message.get("more_body", False):
                    complete = True
                return message

            await app(scope, receive_by_deadline, send)

        return middleware

    return factory
