"""A browser for the console in the Flask test client: https, cookies, and each form's CSRF token from its page."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from werkzeug.test import TestResponse

BASE = "https://analyst.test"


def form_tokens(html: str) -> set[str]:
    return set(re.findall(r'name="csrf" value="([^"]+)"', html))


class ConsoleBrowser:
    """One browser (its own cookie jar and source address) at the console of `app`."""

    def __init__(self, app: Flask, address: str = "10.0.0.66") -> None:
        self.client = app.test_client()
        self.client.environ_base["REMOTE_ADDR"] = address

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.client.get(path, base_url=BASE, **kwargs)

    def post(self, path: str, data: dict[str, str] | None = None, **kwargs: Any) -> TestResponse:
        return self.client.post(path, base_url=BASE, data=data or {}, **kwargs)

    def login(self, name: str, password: str) -> TestResponse:
        page = self.get("/console/login")
        assert page.status_code == 200, page.status_code
        (token,) = form_tokens(page.get_data(as_text=True))
        return self.post("/console/login", {"csrf": token, "name": name, "password": password})

    def signed_in(self, name: str, password: str) -> ConsoleBrowser:
        answer = self.login(name, password)
        assert answer.status_code == 303 and answer.headers["Location"] == "/console", answer.get_data(as_text=True)
        return self

    def token(self, path: str = "/console") -> str:
        page = self.get(path)
        assert page.status_code == 200, page.status_code
        tokens = form_tokens(page.get_data(as_text=True))
        assert len(tokens) == 1, "every form of a page carries the one token"
        return tokens.pop()

    def act(self, path: str, data: dict[str, str] | None = None, **kwargs: Any) -> TestResponse:
        """Post a console form with the token of the page it is on."""
        return self.post(path, {"csrf": self.token(), **(data or {})}, **kwargs)
