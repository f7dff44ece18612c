"""Each request's id: the caller's (the load balancer, another node) when well formed, else a new one;
bound for the request's log lines and outgoing calls, and answered in ``X-Request-ID``."""

from __future__ import annotations

from flask import Flask, Response, g, request

from pullprint import log

ENVIRON_KEY = "pullprint.request_id"


def init_app(app: Flask) -> None:
    @app.before_request
    def bind() -> None:
        request_id = log.well_formed_request_id(request.headers.get(log.REQUEST_ID_HEADER)) or log.new_request_id()
        request.environ[ENVIRON_KEY] = request_id
        g.pullprint_request_id_token = log.bind_request_id(request_id)

    @app.after_request
    def answer(response: Response) -> Response:
        request_id = request.environ.get(ENVIRON_KEY)
        if request_id:
            response.headers[log.REQUEST_ID_HEADER] = request_id
        return response

    @app.teardown_request
    def unbind(_exc: BaseException | None) -> None:
        token = g.pop("pullprint_request_id_token", None)
        if token is not None:
            try:
                log.unbind_request_id(token)
            except ValueError:  # torn down in another context than it was bound in (a streamed answer)
                pass
