"""The server app with its background evaluator started, for ``bench_evaluator.py``.

gunicorn loads it in each worker after the fork (no preload), as ``splitwerk serve``'s
post_worker_init hook starts the evaluator there.
"""

from __future__ import annotations

from flask import Flask

from server.app import create_app, start_background


def create() -> Flask:
    """Build the app and start its evaluator; gunicorn runs it as ``evaluating_app:create()``."""
    app = create_app()
    start_background(app)
    return app
