"""One self-contained HTML page: the built panels (web/, built into saescope/web_dist by
scripts/setup.sh) and the dashboard's data, inlined. It makes no network requests."""

from __future__ import annotations

import base64
import gzip
import html
import json
from pathlib import Path
from typing import Any

from saescope.errors import SaescopeError

WEB_DIST = Path(__file__).resolve().parent.parent / "web_dist"
ASSETS = ("dashboard.js", "dashboard.css")
COMPRESS_ABOVE = 1_000_000  # characters of JSON

# No fetches, no frames, no external anything: the page only runs its own inline script.
CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data:; font-src data:; connect-src 'none'"
)


def read_assets(dist: Path = WEB_DIST) -> tuple[str, str]:
    """(script, stylesheet) of the built dashboard."""
    missing = [name for name in ASSETS if not (dist / name).is_file()]
    if missing:
        raise SaescopeError(
            f"the dashboard's web build is missing ({', '.join(missing)} in {dist}): run scripts/setup.sh, "
            "or `npm ci && npm run build` in web/."
        )
    return (dist / "dashboard.js").read_text(encoding="utf-8"), (dist / "dashboard.css").read_text(
        encoding="utf-8"
    )


def embed_json(data: Any) -> str:
    """JSON that is safe inside a <script> element: '</' and '<!--' cannot close or confuse it."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def data_element(data: dict[str, Any], compress: bool | None = None) -> str:
    """The <script> element holding the data: JSON as it is, or (with `compress`, and by
    default above COMPRESS_ABOVE characters) gzipped and base64-encoded, which the page
    unpacks with the browser's own DecompressionStream: about a third of the size."""
    text = embed_json(data)
    if compress is None:
        compress = len(text) > COMPRESS_ABOVE
    if not compress:
        return f'<script id="saescope-data" type="application/json">{text}</script>'
    packed = base64.b64encode(gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)).decode(
        "ascii"
    )
    return f'<script id="saescope-data" type="application/octet-stream" data-encoding="gzip+base64">{packed}</script>'


def render_html(data: dict[str, Any], compress: bool | None = None) -> str:
    script, style = read_assets()
    # A script body must not contain "</script"; the minified bundle has none, but be sure.
    script = script.replace("</script", "<\\/script")
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(data['title'])}</title>\n<style>\n{style}</style>\n</head>\n<body>\n"
        '<div id="saescope-root"><noscript>This dashboard needs JavaScript.</noscript></div>\n'
        f"{data_element(data, compress)}\n"
        f"<script>\n{script}</script>\n</body>\n</html>\n"
    )
