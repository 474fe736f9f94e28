"""A small Flask shop that runs the demo experiment through the Python SDK and the snippet."""

from examples.shop.app import create_app

__all__ = ["create_app"]
