"""What both schemathesis runs (collector and analyst) check, and how many cases they draw per operation."""

from __future__ import annotations

import os

from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CI_EXAMPLES = 10
LONG_EXAMPLES = int(os.environ.get("PULLPRINT_FUZZ_OPENAPI_EXAMPLES", "2000"))
# No 5xx, and every answer as documented: status, content type, body, headers.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]
