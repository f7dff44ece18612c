"""The fuzz profiles: a short form for CI and a long form of at least 10^6 inputs, chosen by PULLPRINT_FUZZ.

    PULLPRINT_FUZZ unset or "ci"  each target a few hundred inputs; the whole tests/fuzz run stays under ~60 s
    PULLPRINT_FUZZ=long           LONG_EXAMPLES per target, so that the targets together run more than 10^6

`tests/fuzz/run_long.py` runs the long form and writes benchmarks/results/fuzz_long.json. A failing input
found by either form is kept in its test as an explicit `@example` so it is checked on every run after.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILE = os.environ.get("PULLPRINT_FUZZ", "ci").strip().lower() or "ci"
if PROFILE not in ("ci", "long"):
    raise RuntimeError(f"PULLPRINT_FUZZ={PROFILE!r}: use 'ci' (the default) or 'long'")

# Targets that run in-process (tests/fuzz/test_*.py other than the OpenAPI one), and what each gets in the
# long form; 12 of them x 90,000 is over 10^6 even before shrinking and explicit examples are counted.
LONG_EXAMPLES = int(os.environ.get("PULLPRINT_FUZZ_LONG_EXAMPLES", "90000"))

settings.register_profile(
    "pullprint-fuzz-ci", max_examples=200, deadline=None, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "pullprint-fuzz-long", max_examples=LONG_EXAMPLES, deadline=None, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])

FUZZ = settings.get_profile(f"pullprint-fuzz-{PROFILE}")


def fuzz(ci_examples: int | None = None, **overrides: object) -> settings:
    """The profile's settings for one target; `ci_examples` sets the short form's count for a slow or cheap one."""
    if PROFILE == "ci" and ci_examples is not None:
        overrides.setdefault("max_examples", ci_examples)
    return settings(FUZZ, **overrides)  # type: ignore[arg-type]
