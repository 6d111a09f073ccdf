"""Errors shared by every layer. The API maps each class to Docker's status code."""

from __future__ import annotations


class BerthError(Exception):
    """Base class; `status` is the HTTP status the Engine API answers with."""

    status = 500


class InvalidParameter(BerthError):
    status = 400


class NotFound(BerthError):
    status = 404


class Conflict(BerthError):
    status = 409


class NotModified(BerthError):
    status = 304


class Unauthorized(BerthError):
    status = 401


class Forbidden(BerthError):
    status = 403
