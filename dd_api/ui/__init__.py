"""The web UI: server-rendered pages under ``/viz`` over the same in-process services as the API.

``routes`` holds the Litestar handlers, ``views`` turns service payloads into what the templates
show (coloured tokens, inline SVG histograms, coverage), ``templates/`` the Jinja2 pages and
``static/`` one stylesheet and one small script. Nothing is fetched from a CDN: the pages work
offline, and every section is rendered on the server (only the N2G prediction box calls the API
from the browser).
"""

from __future__ import annotations

from dd_api.ui.routes import template_config, ui_handlers

__all__ = ["ui_handlers", "template_config"]
