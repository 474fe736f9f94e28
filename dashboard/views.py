"""The dashboard blueprint: server-rendered pages over server.services, mounted at /dashboard.

Each view loads its input (form or query) with the API's schemas, calls services, and renders
a template with view rows from ``dashboard.presenters``. Pages carry a strict
Content-Security-Policy: no inline script or style, everything from this origin.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import get_locale, get_translations
from flask_wtf.csrf import CSRFError, generate_csrf
from marshmallow import ValidationError
from werkzeug.exceptions import BadRequest, HTTPException, NotFound, ServiceUnavailable

from dashboard import auth, formatting, forms, messages, presenters
from dashboard.decision_card import overview_card, results_card
from dashboard.i18n import (
    BROWSER_TAGS,
    COOKIE,
    COOKIE_MAX_AGE,
    N_,
    SUPPORTED,
    Translator,
)
from server import schemas
from server.config import DEV_TOKEN_FILE
from server.context import current_services
from server.core import errors as domain
from server.core.lifecycle import DELETABLE, NEW_PHASE_FROM, TRANSITIONS
from server.core.models import BASIS_POINTS, Experiment, Role, Status
from server.errors import RETRY_AFTER_SECONDS
from server.services import experiments as services
from server.services import install
from server.services.overview import experiment_page, list_overview
from server.services.results import ExperimentResults
from server.storage.errors import StorageUnavailable

blp = Blueprint(
    "dashboard",
    __name__,
    url_prefix="/dashboard",
    template_folder="templates",
    static_folder="static",
)

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
# Browser libraries installed by dashboard/package.json, served from this origin so that the CSP
# needs no CDN and the dashboard works offline. A checkout has them in node_modules after
# `npm ci` in dashboard/; an installed package (the Docker image) in static/vendor/, where the
# image build copies them, because package data never includes node_modules.
HERE = Path(__file__).parent
VENDOR_FILES = {
    "chart.umd.js": (
        HERE / "node_modules" / "chart.js" / "dist" / "chart.umd.js",
        HERE / "static" / "vendor" / "chart.umd.js",
    ),
}
VENDOR_MAX_AGE = 24 * 60 * 60  # seconds browsers may cache a library; it changes with upgrades
AUDIT_ENTRIES = 50  # audit lines on the experiment page; the API serves the full trail
ACTIONS = ("start", "pause", "resume", "stop", "new-phase", "archive")  # in the order shown
ACTION_DONE = {
    "start": N_("Experiment started."),
    "pause": N_("Experiment paused."),
    "resume": N_("Experiment resumed."),
    "stop": N_("Experiment stopped."),
    "new-phase": N_("New phase started; counts begin at zero."),
    "archive": N_("Experiment archived."),
}
DOMAIN_REFUSED = N_("The experiment cannot be saved like this; see the marked fields.")
STORAGE_DOWN = N_("The data store does not answer right now. Please try again in a few seconds.")
# Error pages: the title by status, and the text where the error brings only Werkzeug's own.
ERROR_TITLES = {
    400: N_("Bad Request"),
    403: N_("Forbidden"),
    404: N_("Not Found"),
    405: N_("Method Not Allowed"),
    503: N_("Service Unavailable"),
}
ERROR_TEXTS = {
    400: N_("The request could not be understood; reload the page and try again."),
    403: N_("You are not allowed to open this page."),
    404: N_("This page does not exist."),
    405: N_("This page cannot be used like this."),
    503: STORAGE_DOWN,
}
# Errors raised with an English text of the catalogue; it is translated on the error page.
TRANSLATED_ON_SHOW = frozenset({auth.VIEWER_REFUSED, STORAGE_DOWN})
# A POST without the session's CSRF token: Flask-WTF's reasons are for developers.
CSRF_REFUSED = N_("the form expired or came from another site; reload the page and retry")
CSRF_FIELD = "csrf_token"  # Flask-WTF's hidden field (WTF_CSRF_FIELD_NAME)
# Domain refusals shown on a re-rendered form, with the status the API would answer.
FORM_REFUSALS: tuple[tuple[type[domain.DomainError], int], ...] = (
    (domain.InvalidInput, 422),
    (domain.Conflict, 409),
)


def _t() -> Translator:
    translator: Translator = g.translator
    return translator


def _actor() -> str:
    user = auth.current_user()
    assert user is not None  # the views that act are behind editor_required
    return user.actor


def _experiment(key: str) -> Experiment:
    """The experiment, or a 404 page."""
    try:
        return services.get_experiment(current_services().store, key)
    except domain.NotFound:
        raise NotFound(_t()("There is no experiment %(key)s.", key=key)) from None


@blp.before_request
def _prepare() -> None:
    """Pick the language and refuse POSTs without a valid CSRF token of the session."""
    g.translator = Translator(str(get_locale()), get_translations())
    current_app.extensions["csrf"].protect()  # Flask-WTF's CSRFProtect: POSTs only


@blp.after_request
def _protect(response: Response) -> Response:
    """Strict CSP and related headers on every dashboard response."""
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if response.mimetype == "text/html":
        # pages show business figures and carry a CSRF token: never cache them
        response.headers["Cache-Control"] = "no-store"
        response.vary.add("Cookie")
        response.vary.add("Accept-Language")
    return response


@blp.context_processor
def _template_context() -> dict[str, Any]:
    translator = _t()
    try:
        user = auth.current_user()
    except StorageUnavailable:  # sessions live in Redis: the outage page shows nobody signed in
        user = None
    return {
        "t": translator,
        "locale": translator.locale,
        "html_lang": BROWSER_TAGS[translator.locale],
        "other_locales": [code for code in SUPPORTED if code != translator.locale],
        "csrf_token": generate_csrf,
        "user": user,
    }


@blp.errorhandler(HTTPException)
def _error_page(error: HTTPException) -> ResponseReturnValue:
    """Errors of dashboard routes as pages, not the API's JSON."""
    return _error_body(error)


def _error_body(error: HTTPException) -> tuple[str, int]:
    """The error page of ``error`` in the page's language, and its status."""
    t = _t()
    code = error.code or 500
    title = t(ERROR_TITLES[code]) if code in ERROR_TITLES else error.name
    description = error.description or ""
    if isinstance(error, CSRFError):
        description = t(CSRF_REFUSED)
    elif description in TRANSLATED_ON_SHOW:
        description = t(description)
    elif description == type(error).description:  # Werkzeug's default text, in English
        description = t(ERROR_TEXTS[code]) if code in ERROR_TEXTS else description
    page = render_template("dashboard/error.html", code=code, title=title, description=description)
    return page, code


@blp.errorhandler(StorageUnavailable)
def _storage_down(error: StorageUnavailable) -> ResponseReturnValue:
    """Redis does not answer: a page that says so and when to retry (the API answers JSON)."""
    body, code = _error_body(ServiceUnavailable(STORAGE_DOWN))
    return body, code, {"Retry-After": str(RETRY_AFTER_SECONDS)}


@blp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """The token form; a valid viewer or editor token starts a session."""
    t = _t()
    target = _safe_next(request.values.get("next"))
    error = ""
    if request.method == "POST":
        found = auth.check_token(request.form.get("token", ""))
        if found is not None:
            auth.sign_in(*found)
            return redirect(target)
        error = t("This token is not valid for the dashboard.")
    status = 401 if error else 200
    settings = current_services().settings
    # only a development server has a token file; a production login never mentions `make run`
    dev_token_file = Path(settings.DATA_DIR) / DEV_TOKEN_FILE if settings.DEV else None
    return render_template(
        "dashboard/login.html",
        error=error,
        next=target,
        is_tokenless_dev=auth.is_tokenless_dev(),
        dev_token_file=dev_token_file,
    ), status


@blp.route("/logout", methods=["POST"])
def logout() -> ResponseReturnValue:
    """End the session."""
    auth.sign_out()
    flash(_t()("You are signed out."))
    return redirect(url_for("dashboard.login"))


def _safe_next(target: str | None) -> str:
    """Only dashboard paths of this site are redirect targets (no open redirect)."""
    if target and target.startswith("/dashboard") and not target.startswith("//"):
        return target
    return url_for("dashboard.index")


@blp.route("/language/<code>", methods=["GET"])
def language(code: str) -> ResponseReturnValue:
    """Switch the language and go back to the page the switch was on."""
    if code not in SUPPORTED:
        raise NotFound()
    response = redirect(_safe_next(request.args.get("next")))
    response.set_cookie(
        COOKIE,
        code,
        max_age=COOKIE_MAX_AGE,
        samesite="Lax",
        httponly=True,
        secure=request.is_secure,
    )
    return response


@blp.route("/vendor/<name>", methods=["GET"])
def vendor(name: str) -> ResponseReturnValue:
    """A browser library from dashboard/node_modules (installed by `npm ci`)."""
    path = next((path for path in VENDOR_FILES.get(name, ()) if path.is_file()), None)
    if path is None:
        raise NotFound("run `npm ci` in dashboard/ to install the chart library")
    return send_file(path, mimetype="text/javascript", max_age=VENDOR_MAX_AGE)


@blp.route("/", methods=["GET"])
@auth.login_required
def index() -> ResponseReturnValue:
    """The experiment list: status, days, visitors, who leads, SRM; filter and search."""
    t = _t()
    try:
        query = schemas.ExperimentListQuerySchema().load(request.args)
    except ValidationError:
        raise BadRequest(t("Unknown status filter.")) from None
    search = request.args.get("q", "").strip()
    rows = list_overview(
        current_services().store,
        current_services().results_reader,
        status=query["status"],
        search=search,
        now=time.time(),
    )
    currency = current_services().settings.CURRENCY
    return render_template(
        "dashboard/index.html",
        rows=[presenters.list_row(row, t, currency) for row in rows],
        cards={row.experiment.key: overview_card(row, t, currency) for row in rows},
        without_data={row.experiment.key for row in rows if row.visitors == 0},
        statuses=[(status.value, presenters.status_label(status, t)) for status in Status],
        status=query["status"].value if query["status"] else "",
        search=search,
    )


@blp.route("/install", methods=["GET"])
@auth.login_required
def install_page() -> ResponseReturnValue:
    """What a shop copies to start: embed code, Python SDK, an ingest key, the example shop."""
    base_url = request.url_root.rstrip("/")
    settings = current_services().settings
    version = install.current_version()
    return render_template(
        "dashboard/install.html",
        embed_code=install.embed_code(base_url),
        snippet_version=version,
        sdk_install=install.SDK_INSTALL_COMMAND,
        sdk_code=install.python_sdk_code(base_url),
        ingest_commands=install.ingest_key_commands(),
        shop_command=install.shop_command(base_url),
        cors_origins=", ".join(settings.CORS_ORIGINS),
        is_dev=settings.DEV,
    )


def _actions(experiment: Experiment) -> list[str]:
    """Lifecycle actions the experiment's status allows, in the order the page shows them."""
    return [
        action
        for action in ACTIONS
        if (action == "new-phase" and experiment.status in NEW_PHASE_FROM)
        or (action in TRANSITIONS and experiment.status in TRANSITIONS[action][0])
    ]


def _results_context(experiment: Experiment, results: ExperimentResults) -> dict[str, Any]:
    t = _t()
    currency = current_services().settings.CURRENCY
    keys = [variant.key for variant in experiment.variants]
    daily = {series.goal: series for series in results.daily}
    # orders count for the goals listening to the order event: their repeats are repeat buyers
    fed_by_orders = {goal.key for goal in experiment.goals if goal.event_name == forms.ORDER_GOAL}
    goals = [
        presenters.goal_view(
            report,
            keys,
            daily.get(report.key),
            t,
            currency,
            is_fed_by_orders=report.key in fed_by_orders,
        )
        for report in results.goals
    ]
    reports = {report.key: report for report in results.goals}
    segments = [
        presenters.segment_table(report, reports[report.goal], keys, t, currency)
        for report in results.segments
        if report.goal in reports
    ]
    primary = next((report for report in results.goals if report.is_primary), None)
    first_daily = results.daily[0] if results.daily else None
    return {
        "decision": results_card(results, t, currency),
        "goals": goals,
        "segments": segments,
        "unjudged_note": presenters.unjudged_note(t),
        "progress": None
        if primary is None
        else presenters.progress(primary, experiment.minimum_effect, t),
        "sample_ratio": presenters.sample_ratio(results, t),
        "visitors_chart": None
        if first_daily is None or not first_daily.points
        else presenters.visitors_chart(first_daily, keys, t),
    }


@blp.route("/experiments/<key:key>", methods=["GET"])
@auth.login_required
def experiment(key: str) -> ResponseReturnValue:
    """One experiment: results per goal, charts, segments, progress, actions, audit trail."""
    t = _t()
    try:
        page = experiment_page(
            current_services().store,
            current_services().results_reader,
            key,
            audit_limit=AUDIT_ENTRIES,
            now=time.time(),
        )
    except domain.NotFound:
        raise NotFound(t("There is no experiment %(key)s.", key=key)) from None
    found = page.experiment
    context = {} if page.results is None else _results_context(found, page.results)
    return render_template(
        "dashboard/experiment.html",
        experiment=found,
        status_label=presenters.status_label(found.status, t),
        started=presenters.started_text(found, t),
        actions=[presenters.action_text(action, found.name, t) for action in _actions(found)],
        is_editable=bool(forms.editable_fields(found.status)),
        is_deletable=found.status in DELETABLE,
        audit=presenters.audit_rows(page.audit, t),
        **context,
    )


@blp.route("/experiments/<key:key>/actions/<action>", methods=["GET", "POST"])
@auth.editor_required
def act(key: str, action: str) -> ResponseReturnValue:
    """Confirm (GET) and then apply (POST) a lifecycle action."""
    t = _t()
    if action not in ACTIONS:
        raise NotFound()
    found = _experiment(key)
    error = ""
    status = 200
    if request.method == "POST":
        try:
            _apply(found, action)
        except ValidationError as invalid:
            error, status = messages.plain("", _first_message(invalid.messages), t), 422
        except domain.DomainError as refused:
            error, status = _refusal_text(refused, t), _refusal_status(refused)
        else:
            current_services().experiment_cache.invalidate()
            flash(t(ACTION_DONE[action]))
            return redirect(url_for("dashboard.experiment", key=key))
    return render_template(
        "dashboard/confirm.html",
        experiment=found,
        action=action,
        text=presenters.action_text(action, found.name, t),
        error=error,
        coverage=forms.percent_text(found.coverage),
    ), status


def _apply(found: Experiment, action: str) -> None:
    """Load the action's form with the API's schema and call the service."""
    settings = current_services().settings
    now = time.time()
    if action == "stop":
        data = schemas.StopSchema().load({"winner": request.form.get("winner") or None})
        services.act_on_experiment(
            current_services().store, found.key, "stop", _actor(), now,
            winner=data["winner"], retention_days=settings.RETENTION_DAYS,
        )  # fmt: skip
    elif action == "new-phase":
        data = schemas.NewPhaseSchema().load(_new_phase_input(found))
        services.start_new_phase(
            current_services().store,
            found.key,
            data,
            _actor(),
            now,
            retention_days=settings.RETENTION_DAYS,
        )
    else:
        services.act_on_experiment(
            current_services().store,
            found.key,
            action,
            _actor(),
            now,
            retention_days=settings.RETENTION_DAYS,
        )


def _new_phase_input(found: Experiment) -> dict[str, Any]:
    """API input of a new phase: the confirmation, and coverage or weights if they changed."""
    form = forms.NewPhaseForm(formdata=request.form)
    if not form.validate():
        raise ValidationError(forms.messages_of(form, request.form))
    raw: dict[str, Any] = {"confirm": request.form.get("confirm") == "yes"}
    coverage = form.coverage.data
    if coverage is not None and round(coverage * forms.PERCENT) != found.coverage:
        raw["coverage"] = round(coverage * forms.PERCENT)
    typed = [entry.data for entry in form.weight.entries]
    weights = [
        typed[index] if index < len(typed) and typed[index] is not None else variant.weight
        for index, variant in enumerate(found.variants)
    ]
    if any(w != v.weight for w, v in zip(weights, found.variants, strict=True)):
        raw["variants"] = [
            {"key": v.key, "weight": w, "payload": v.payload}
            for w, v in zip(weights, found.variants, strict=True)
        ]
    return raw


def _first_message(messages: Any) -> str:
    """The first message of marshmallow's nested error messages."""
    if isinstance(messages, dict):
        for value in messages.values():
            return _first_message(value)
    if isinstance(messages, list) and messages:
        return _first_message(messages[0])
    return str(messages)


def _refusal_text(refused: domain.DomainError, t: Translator) -> str:
    """A refusal in plain words: its first field message, else its own message."""
    for field, found in refused.errors.items():
        return messages.plain(str(field), _first_message(found), t)
    return messages.plain("", refused.message, t)


def _refusal_status(refused: domain.DomainError) -> int:
    return next((code for kind, code in FORM_REFUSALS if isinstance(refused, kind)), 400)


def _render_form(
    state: forms.FormState, experiment: Experiment | None, status: int = 200
) -> ResponseReturnValue:
    editable = (
        forms.editable_fields(Status.DRAFT) | {"key"}
        if experiment is None
        else forms.editable_fields(experiment.status)
    )
    t = _t()
    return render_template(
        "dashboard/form.html",
        form=state,
        field_labels={name: messages.field_label(name, t) for name in state.errors},
        split=[
            (key, formatting.percent(share, t.locale, 1))
            for key, share in forms.split_preview(state.values)
        ],
        experiment=experiment,
        editable=editable,
        max_rows=forms.ROW_GROUPS,
        # windows are fixed once started: shown, sent back as they are, not to be changed
        windows_fixed=" readonly" if experiment and experiment.status != Status.DRAFT else "",
        max_window_days=schemas.MAX_WINDOW_DAYS,
        max_return_days=schemas.MAX_RETURN_DAYS,
        kinds=[(kind, _t()(presenters.KIND_LABELS[kind])) for kind in presenters.KIND_LABELS],
        full=BASIS_POINTS // forms.PERCENT,
    ), status


def _failed(state: forms.FormState, parsed: forms.Parsed, error: Exception) -> forms.FormState:
    """Put a refusal's messages next to the fields they name."""
    if isinstance(error, ValidationError):
        found: Any = error.messages
        state.message = _t()("Please correct the marked fields.")
    else:
        assert isinstance(error, domain.DomainError)
        found = error.errors
        # the fields carry the details; a refusal without fields keeps its own message
        state.message = _t()(DOMAIN_REFUSED) if found else messages.plain("", error.message, _t())
    merged = forms.merge_errors(parsed.errors, forms.field_errors(found, parsed.rows))
    # WTForms' messages come first: a field it refused is not refused again in other words
    state.errors = {**messages.humanise(merged, _t()), **parsed.said}
    return state


@blp.route("/experiments/new", methods=["GET", "POST"])
@auth.editor_required
def create() -> ResponseReturnValue:
    """The form for a new draft experiment."""
    t = _t()
    if request.method == "GET":
        # orders only come with an ingest key: with one, the shop sends money
        sends_orders = bool(current_services().settings.tokens_for(Role.INGEST))
        values = forms.new_values(sends_orders)
        return _render_form(forms.FormState(values, forms.rows_shown(values)), None)
    values = request.form.to_dict()
    values.pop(CSRF_FIELD, None)
    state = forms.FormState(values, forms.rows_shown(values))
    parsed = forms.parse(values)
    forms.require_goal(parsed)
    try:
        data = schemas.ExperimentCreateSchema().load(parsed.data)
        if parsed.has_errors:
            raise ValidationError({})
        created = services.create_experiment(current_services().store, data, _actor(), time.time())
    except ValidationError as error:
        return _render_form(_failed(state, parsed, error), None, 422)
    except (domain.InvalidInput, domain.Conflict) as error:
        return _render_form(_failed(state, parsed, error), None, _refusal_status(error))
    current_services().experiment_cache.invalidate()
    flash(t("Draft %(key)s created.", key=created.key))
    return redirect(url_for("dashboard.experiment", key=created.key))


@blp.route("/experiments/<key:key>/edit", methods=["GET", "POST"])
@auth.editor_required
def edit(key: str) -> ResponseReturnValue:
    """The form for an existing experiment; fields its status locks are shown disabled."""
    t = _t()
    found = _experiment(key)
    if not forms.editable_fields(found.status):
        flash(t("Archived experiments are read only."))
        return redirect(url_for("dashboard.experiment", key=key))
    current_values = forms.values_of(found)
    if request.method == "GET":
        return _render_form(
            forms.FormState(current_values, forms.rows_shown(current_values)), found
        )
    editable = forms.editable_fields(found.status)
    submitted = request.form.to_dict()
    submitted.pop(CSRF_FIELD, None)
    values = forms.merged_values(submitted, current_values, editable)
    state = forms.FormState(values, forms.rows_shown(values))
    parsed = forms.parse(values)
    changes = forms.changes(parsed, forms.parse(current_values), editable)
    if not changes and not parsed.has_errors:
        flash(t("Nothing changed."))
        return redirect(url_for("dashboard.experiment", key=key))
    try:
        data = schemas.ExperimentUpdateSchema().load(changes)
        if parsed.has_errors:
            raise ValidationError({})
        services.update_experiment(current_services().store, key, data, _actor(), time.time())
    except ValidationError as error:
        return _render_form(_failed(state, parsed, error), found, 422)
    except (domain.InvalidInput, domain.Conflict) as error:
        return _render_form(_failed(state, parsed, error), found, _refusal_status(error))
    current_services().experiment_cache.invalidate()
    flash(t("Changes saved."))
    return redirect(url_for("dashboard.experiment", key=key))


@blp.route("/experiments/<key:key>/delete", methods=["GET", "POST"])
@auth.editor_required
def delete(key: str) -> ResponseReturnValue:
    """Confirm (GET) and then delete (POST) a draft or archived experiment with all its data."""
    t = _t()
    found = _experiment(key)
    error = ""
    status = 200
    if found.status not in DELETABLE:
        error, status = t("Only drafts and archived experiments can be deleted."), 409
    elif request.method == "POST":
        try:
            services.delete_experiment(current_services().store, key, _actor(), time.time())
        except domain.DomainError as refused:
            error, status = _refusal_text(refused, t), _refusal_status(refused)
        else:
            current_services().experiment_cache.invalidate()
            flash(t("Experiment %(key)s deleted.", key=key))
            return redirect(url_for("dashboard.index"))
    return render_template("dashboard/delete.html", experiment=found, error=error), status
