"""The PTB request backend of the offline Bot API: every call a bot makes is answered by a
`FakeTelegramState` in this process, and nothing touches the network."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from telegram.error import NetworkError
from telegram.request import BaseRequest, RequestData

from bot.offline_api import BotApiError, FakeTelegramState
from bot.offline_faults import ConnectionLost


def _save_upload(filename: str, data: bytes) -> str:
    """Write an uploaded file where the console can point at it; return its path."""
    folder = Path(tempfile.gettempdir()) / "tradewind-uploads"
    folder.mkdir(mode=0o700, exist_ok=True)
    suffix = Path(filename).suffix or ".bin"
    fd, path = tempfile.mkstemp(suffix=suffix, dir=folder)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return path


class OfflineRequest(BaseRequest):
    """A PTB request backend answering from a `FakeTelegramState`; never touches the network.
    Several instances may share one state (PTB uses one for getUpdates, one for the rest)."""

    __slots__ = ("_read_timeout", "state")

    def __init__(self, state: FakeTelegramState, read_timeout: float | None = 5.0) -> None:
        self.state = state
        self._read_timeout = read_timeout

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        """Nothing to set up: there is no connection pool."""

    async def shutdown(self) -> None:
        """Nothing to release; idempotent."""

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: object = BaseRequest.DEFAULT_NONE,
        write_timeout: object = BaseRequest.DEFAULT_NONE,
        connect_timeout: object = BaseRequest.DEFAULT_NONE,
        pool_timeout: object = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Answer locally; timeouts are irrelevant without a network (getUpdates honours its
        own ``timeout`` parameter)."""
        if "/file/bot" in url:
            error = BotApiError(404, "Not Found: files are not served by the offline Bot API")
            return 404, json.dumps(error.to_json()).encode()
        api_method = url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
        params: dict[str, object] = dict(request_data.json_parameters) if request_data else {}
        if request_data is not None:
            # An uploaded file (a chart) is saved, and its parameter names the file's path.
            for name, part in request_data.multipart_data.items():
                content = part[1]
                data = content if isinstance(content, bytes) else content.read()
                params[name] = _save_upload(str(part[0] or name), data)
        try:
            return await self.state.handle(api_method, params)
        except ConnectionLost as exc:  # an armed network fault: what httpx's failure becomes
            raise NetworkError(f"offline Bot API: {exc}") from exc
