"""The chart of `concurrency.py`'s JSON: submit throughput, and the mean time a job spends being
submitted, against the number of submitters, for plain CUPS and pullprint (HTTP and `lp`); one SVG,
drawn here with no plotting library.

    .venv/bin/python benchmarks/plot_concurrency.py [--json benchmarks/results/concurrency.json]
                                                    [--out docs/images/sizing-concurrency.svg]
"""

from __future__ import annotations

import argparse
import json
import math
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERIES = (("cups", "plain CUPS (lp -H indefinite)", "#1b6ca8"),
          ("cups_crash_safe", "plain CUPS, SyncOnClose Yes", "#0f766e"),
          ("pullprint_http", "pullprint, HTTP through HAProxy", "#c2410c"),
          ("pullprint_lp", "pullprint, lp to SecurePrint", "#6b21a8"))
W, H, PAD_L, PAD_R, PAD_T, PAD_B = 460, 300, 64, 16, 40, 48


def _ticks(top: float) -> list[float]:
    """Round gridline values for a log axis from below 1 to `top`."""
    ticks = [1.0]
    while ticks[-1] < top:
        ticks.append(ticks[-1] * 10)
    smaller = [0.1]
    while smaller[-1] > 0.001:
        smaller.append(smaller[-1] / 10)
    return sorted(smaller + ticks)


def panel(levels: list[dict], value: str, title: str, unit: str, x0: float) -> list[str]:
    xs = [lv["submitters"] for lv in levels]
    points = {key: [(lv["submitters"], value_of(lv, key, value)) for lv in levels] for key, _, _ in SERIES}
    values = [v for series in points.values() for _, v in series if v > 0]
    lo, hi = 10 ** math.floor(math.log10(min(values))), 10 ** math.ceil(math.log10(max(values)))
    xlo, xhi = math.log2(min(xs)), math.log2(max(xs)) or 1.0

    def sx(x: float) -> float:
        span = (xhi - xlo) or 1.0
        return x0 + PAD_L + (math.log2(x) - xlo) / span * (W - PAD_L - PAD_R)

    def sy(y: float) -> float:
        return PAD_T + (1 - (math.log10(y) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))) * (H - PAD_T - PAD_B)

    out = [f'<text x="{x0 + W / 2}" y="22" text-anchor="middle" font-weight="bold">{escape(title)}</text>']
    for tick in _ticks(hi):
        if lo <= tick <= hi:
            out.append(f'<line x1="{x0 + PAD_L}" x2="{x0 + W - PAD_R}" y1="{sy(tick):.1f}" y2="{sy(tick):.1f}" '
                       f'stroke="#ddd"/><text x="{x0 + PAD_L - 6}" y="{sy(tick) + 4:.1f}" text-anchor="end">'
                       f'{tick:g}</text>')
    for x in xs:
        out.append(f'<text x="{sx(x):.1f}" y="{H - PAD_B + 18}" text-anchor="middle">{x}</text>')
    out.append(f'<text x="{x0 + W / 2}" y="{H - 8}" text-anchor="middle">submitters at once</text>')
    out.append(f'<text x="{x0 + 14}" y="{H / 2}" transform="rotate(-90 {x0 + 14} {H / 2})" '
               f'text-anchor="middle">{escape(unit)}</text>')
    for key, label, colour in SERIES:
        series = [(x, y) for x, y in points[key] if y > 0]
        path = " ".join(f"{'M' if i == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for i, (x, y) in enumerate(series))
        out.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2">'
                   f'<title>{escape(label)}</title></path>')
        out += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}"><title>{escape(label)}: '
                f'{y:.3g} {escape(unit)} at {x}</title></circle>' for x, y in series]
    return out


def value_of(level: dict, key: str, value: str) -> float:
    rate = float(level[key]["jobs_per_s"])
    if value == "throughput":
        return rate
    return level["submitters"] / rate * 1000 if rate else 0.0  # Little's law: mean ms per job in flight


def render(data: dict) -> str:
    levels = sorted(data["levels"], key=lambda lv: lv["submitters"])
    body = panel(levels, "throughput", "Submit throughput (log scale)", "jobs/s", 0)
    body += panel(levels, "latency", "Mean time per job being submitted", "ms", W)
    legend = []
    for i, (_, label, colour) in enumerate(SERIES):
        x, y = PAD_L + (i % 2) * 400, H + 8 + (i // 2) * 16  # two entries a row
        legend.append(f'<rect x="{x}" y="{y}" width="14" height="4" fill="{colour}"/>'
                      f'<text x="{x + 20}" y="{y + 6}">{escape(label)}</text>')
    note = escape(f"{data.get('command', '')} — {data.get('started_at', '')}, {data.get('nproc', '?')} cores")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * W}" height="{H + 60}" '
            f'font-family="sans-serif" font-size="12" role="img" aria-label="submit throughput and latency '
            f'against concurrency">\n<rect width="100%" height="100%" fill="white"/>\n'
            + "\n".join(body + legend)
            + f'\n<text x="{PAD_L}" y="{H + 52}" font-size="10" fill="#555">{note}</text>\n</svg>\n')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "concurrency.json")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "sizing-concurrency.svg")
    args = parser.parse_args(argv)
    args.out.write_text(render(json.loads(args.json.read_text())))
    print(f"chart: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
