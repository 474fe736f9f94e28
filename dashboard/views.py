"""The dashboard blueprint: server-rendered pages over server.services."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

from server.services import experiments as services
from server.storage.store import Store

blp = Blueprint("dashboard", __name__, url_prefix="/dashboard", template_folder="templates")


@blp.route("/", methods=["GET"])
def index() -> str:
    """The experiment list (a first, read-only page)."""
    store: Store = current_app.extensions["splitwerk.store"]
    experiments, total = services.list_experiments(store, None, 1, 100)
    return render_template("dashboard/index.html", experiments=experiments, total=total)
