"""A tiny web app deployed by verbatim.

It reads the release manifest at run time to turn logical asset names into
CDN URLs, so pages always reference the exact asset versions they were built with.
"""
import json
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

MANIFEST = json.load(open(os.environ.get("VERBATIM_MANIFEST", "manifest.json")))
CDN = os.environ.get("CDN_URL", "/")


def asset_url(name):
    entry = MANIFEST["assets"].get(name)
    return CDN + entry["key"] if entry else CDN + name


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        page = open(os.path.join(os.path.dirname(__file__), "templates", "index.html")).read()
        body = page.replace("{{ css }}", asset_url("css/site.css")).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    HTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8000"))), Handler).serve_forever()
