"""Errors in the distribution spec's JSON shape: {"errors": [{"code", "message", "detail"}]}."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

STATUS = {
    "BLOB_UNKNOWN": 404,
    "BLOB_UPLOAD_INVALID": 400,
    "BLOB_UPLOAD_UNKNOWN": 404,
    "DIGEST_INVALID": 400,
    "MANIFEST_BLOB_UNKNOWN": 400,
    "MANIFEST_INVALID": 400,
    "MANIFEST_UNKNOWN": 404,
    "NAME_INVALID": 400,
    "NAME_UNKNOWN": 404,
    "SIZE_INVALID": 400,
    "TAG_INVALID": 400,
    "UNAUTHORIZED": 401,
    "DENIED": 403,
    "UNSUPPORTED": 405,
    "TOOMANYREQUESTS": 429,
    "RANGE_INVALID": 416,
}


class RegistryError(Exception):
    def __init__(self, code: str, message: str, detail: Any = None, status: int | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail
        self.status = status or STATUS.get(code, 400)
        self.headers = headers or {}

    def response(self, head: bool = False) -> web.Response:
        body = {"errors": [{"code": self.code, "message": self.message, "detail": self.detail}]}
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", **self.headers}
        if head:
            headers["Content-Length"] = str(len(data))
            return web.Response(status=self.status, headers=headers)
        return web.Response(status=self.status, body=data, headers=headers)
