"""The web release station a kiosk browser shows (/release): its pages, their language and their security headers.

The pages are static apart from their language: everything the station does goes through the
terminal API (collector/api.py), with the credential its enrolment left in the browser. Texts are
gettext messages (Flask-Babel; catalogs in collector/translations, docs/terminals.md says how to
add a language); the page's script gets them as a JSON data block, never as code.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Flask, Response, current_app, render_template, request, send_from_directory
from flask_babel import Babel, get_locale, gettext
from markupsafe import Markup

from collector.messages import MESSAGES

bp = Blueprint("station", __name__)

# The languages with a catalog (collector/translations/<code>); English is the source language.
LANGUAGES = ("en", "de")
# Only this page's own files: no inline script or style, no other origin, no framing, no plugins.
# connect-src 'self' is what the script's fetch() calls need; form-action: the forms are never sent.
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                           "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
STATION_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def station_language() -> str:
    """The kiosk's language: `?lang=` in the station's address (its kiosk configuration), else the
    collector's `station_language`, else English."""
    wanted = request.args.get("lang", "")
    if wanted in LANGUAGES:
        return wanted
    configured = current_app.config.get("PULLPRINT_STATION_LANGUAGE", "en")
    return configured if configured in LANGUAGES else "en"


def init_app(app: Flask, language: str = "en") -> None:
    """Attach the station's translations (Flask-Babel) and headers to the collector's app."""
    app.config["PULLPRINT_STATION_LANGUAGE"] = language
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "translations")  # relative to collector/
    Babel(app, locale_selector=station_language)
    app.register_blueprint(bp)

    @app.after_request
    def station_headers(response: Response) -> Response:
        # The pages and their files; the API answers JSON and needs none of these.
        if request.path.startswith(("/release", "/static/", "/favicon.ico")):
            for name, value in STATION_HEADERS.items():
                response.headers.setdefault(name, value)
        return response


def station_strings() -> dict[str, Any]:
    """Every text the station's script shows, in the kiosk's language: its own, and each reason code's."""
    return {
        "reasons": {code: gettext(text) for code, text in MESSAGES.items()},
        "ui": {
            "welcome": gettext("Welcome, %(user)s"),
            "welcome_code": gettext("Your document"),
            "enter_code": gettext("Type the release code from your mail."),
            "code_short": gettext("A release code has 10 digits."),
            "no_jobs": gettext("You have no jobs waiting."),
            "jobs_more": gettext("Showing %(shown)s of your %(total)s jobs; “Print all” prints every one."),
            "pages": gettext("%(n)s pages"),
            "page": gettext("1 page"),
            "pages_unknown": gettext("pages unknown"),
            "copies": gettext("%(n)s copies"),
            "copy": gettext("1 copy"),
            "color": gettext("colour"),
            "mono": gettext("black & white"),
            "duplex": gettext("two-sided"),
            "simplex": gettext("one-sided"),
            "sent": gettext("sent %(when)s"),
            "expires": gettext("expires %(when)s"),
            "unavailable": gettext("cannot print right now"),
            "interrupted_tag": gettext("interrupted"),
            "confirm": gettext("Check the tray, then print again"),
            "delete": gettext("Delete"),
            "delete_confirm": gettext("Delete “%(title)s”? This cannot be undone."),
            "delete_yes": gettext("Yes, delete"),
            "delete_no": gettext("Keep it"),
            "deleted": gettext("Deleted."),
            "result_printed": gettext("Printed"),
            "result_queued": gettext("Queued: prints shortly"),
            "result_refused": gettext("Not printed"),
            "result_interrupted": gettext("Interrupted: waiting for you"),
            "suggestion": gettext("Try printer %(printer)s nearby (%(location)s)."),
            "suggestion_plain": gettext("Try printer %(printer)s nearby."),
            "summary": gettext("%(printed)s printed, %(queued)s queued, %(failed)s not printed."),
            "nothing_selected": gettext("Select at least one job first."),
            "logging_in": gettext("Checking…"),
            "working": gettext("Sending to the printer…"),
            "logged_out": gettext("You have been logged out."),
            "timed_out": gettext("You were logged out after a while without activity."),
            "countdown": gettext("Logging out in %(s)s s"),
            "error": gettext("Something went wrong (%(code)s). Please try again."),
            "network": gettext("The print service cannot be reached. Please try again."),
            "enter_pin": gettext("Enter your user name and PIN."),
            "backspace": gettext("Delete the last character"),
            "to_pin": gettext("Go to the PIN"),
            "log_in": gettext("Log in"),
            "printer_ok": gettext("Ready"),
            "printer_warning": gettext("Ready, with a warning"),
            "printer_error": gettext("Not ready"),
            "printer_unknown": gettext("Status unknown"),
            "printer_out_of_service": gettext("Out of service"),
            "printer_unmonitored": gettext("Ready"),
            "not_enrolled": gettext("This station is not enrolled. Ask an administrator for its enrolment link."),
            "enrolling": gettext("Enrolling…"),
            "enrolled": gettext("This station now releases jobs at printer %(printer)s."),
            "already_enrolled": gettext("This link was already used. This station is enrolled for printer "
                                        "%(printer)s."),
            "open_station": gettext("Open the release station"),
        },
    }


def _strings_block() -> Markup:
    # JSON inside <script type="application/json">: "</" must not end the element early.
    text = json.dumps(station_strings(), ensure_ascii=False).replace("</", "<\\/")
    return Markup(text)  # noqa: S704 - JSON text with every "</" escaped, in a data block (not executed)


@bp.get("/release")
def release_station() -> str:
    """The web release station for kiosks: badge field focused, job list, big buttons."""
    return render_template("release.html", printer=request.args.get("printer", ""), strings=_strings_block(),
                           lang=str(get_locale() or "en"))


@bp.get("/release/enroll")
def enroll_station() -> str:
    """Enrols this browser as a release station: its script redeems the code in the link's #fragment."""
    return render_template("enroll.html", strings=_strings_block(), lang=str(get_locale() or "en"))


@bp.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for it whatever the page links to: the station's icon, never a 404."""
    return send_from_directory(current_app.static_folder or "static", "favicon.svg", mimetype="image/svg+xml",
                               max_age=86400)
