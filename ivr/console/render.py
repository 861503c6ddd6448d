"""How the console answers with a page: in the language asked for (?lang=, then the
one remembered in a cookie, then the browser's), from a template in templates/
(Jinja2 through aiohttp_jinja2, autoescaped), with the headers every page carries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from ivr.console import texts

TEMPLATES = Path(__file__).with_name("templates")
TEXT = {lang: texts.words(lang) for lang in texts.LANGUAGES}
LABELS = {lang: texts.labels(lang) for lang in texts.LANGUAGES}
HEADERS = {"Content-Security-Policy": "default-src 'self'", "X-Frame-Options": "DENY"}


def setup(w: web.Application) -> None:
    """The templates' environment, on the web app that serves the console."""
    aiohttp_jinja2.setup(w, loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                         default_helpers=False, trim_blocks=True, lstrip_blocks=True)


def lang(request: web.Request) -> str:
    asked = request.query.get("lang") or request.cookies.get("ivr_lang", "")
    if asked in TEXT:
        return asked
    return "ru" if request.headers.get("Accept-Language", "").lower().startswith("ru") else "en"


def words(request: web.Request) -> dict[str, str]:
    return TEXT[lang(request)]


def page(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    """`template` rendered with the page's language and words (lang, t) and `context`;
    a language asked for in the query is remembered."""
    response = aiohttp_jinja2.render_template(
        template, request, {"lang": lang(request), "t": words(request), **context}, status=status)
    response.headers.update(HEADERS)
    if request.query.get("lang") in TEXT:
        response.set_cookie("ivr_lang", request.query["lang"], samesite="Strict", path="/console")
    return response
