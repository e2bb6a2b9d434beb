"""Where the origin shield fetches an allowed object: a folder, an HTTP origin, a private S3
bucket. Origins return data (``OriginReply``); the ASGI adapter builds the response."""

from .base import Origin, OriginReply
from .files import FileOrigin
from .http import HttpOrigin

__all__ = ["FileOrigin", "HttpOrigin", "Origin", "OriginReply"]
