"""The baseline for benchmarks/verify_throughput.py: Flask alone, parsing a JSON body and answering JSON.

    gunicorn --workers 2 benchmarks.bare_flask_app:app

No database, no crypto: what is left of a request when Tokenward's work is taken out of it.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request

app = Flask(__name__)


@app.get("/healthz")
def healthz() -> Any:
    return {"status": "ok"}


@app.post("/api/v1/verify")
def verify() -> Any:
    body = request.get_json()
    return {"status": "ok", "username": body.get("username"), "digits": len(str(body.get("otp", "")))}
