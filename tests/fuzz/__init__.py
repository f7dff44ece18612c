"""Property-based tests (hypothesis) of each parser of outside input; schemathesis against the OpenAPI documents."""
