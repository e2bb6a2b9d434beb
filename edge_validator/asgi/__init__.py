"""The validator's HTTP adapters (ASGI): nginx ``auth_request`` endpoint, origin shield, health."""

from .app import app_from_env, create_app

__all__ = ["app_from_env", "create_app"]
