"""``skydask report``: one self-contained HTML page for one or more run directories.

Plots are embedded as base64 PNG, metrics are a table with coloured verdicts, provenance is
folded away in a ``<details>`` block. Given two runs (two data releases, two code versions),
the page adds their metrics side by side with the differences. Every string from a run is
HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from skydask.errors import SkydaskError

__all__ = ["render_report", "write_report"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: .92em; }
th, td { border: 1px solid #ddd; padding: .3em .6em; text-align: left; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { background: #d8f5d8; color: #185a18; font-weight: 600; }
.fail { background: #f9d6d6; color: #8a1414; font-weight: 600; }
.summary-pass { color: #185a18; } .summary-fail { color: #8a1414; }
figure { display: inline-block; margin: .5em; vertical-align: top; }
figure img { max-width: 560px; border: 1px solid #ddd; }
figcaption { font-size: .85em; color: #555; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; font-size: .8em; }
"""


def _load_run(directory: Path) -> dict[str, Any]:
    metrics_file, provenance_file = directory / "metrics.json", directory / "provenance.json"
    if not metrics_file.exists() or not provenance_file.exists():
        raise SkydaskError(
            f"{str(directory)!r} is not a finished skydask run: "
            "it lacks metrics.json or provenance.json"
        )
    return {
        "dir": directory,
        "metrics": json.loads(metrics_file.read_text()),
        "provenance": json.loads(provenance_file.read_text()),
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.6g}"
    return html.escape(str(value))


def _judged_first(metrics: dict[str, Any]) -> list[tuple[str, Any]]:
    """Metrics with a threshold first (failures first among them), then the others."""
    order = {"fail": 0, "pass": 1}
    return sorted(metrics.items(), key=lambda kv: (order.get(kv[1].get("verdict", ""), 2), kv[0]))


def _metrics_table(run: dict[str, Any]) -> str:
    rows = []
    for analysis, metrics in run["metrics"]["analyses"].items():
        for name, m in _judged_first(metrics):
            verdict = m.get("verdict", "")
            cls = f' class="{verdict}"' if verdict else ""
            rows.append(
                f"<tr><td>{html.escape(analysis)}</td><td>{html.escape(name)}</td>"
                f'<td class="num">{_fmt(m.get("value"))}</td>'
                f"<td>{html.escape(m.get('unit', ''))}</td>"
                f"<td>{html.escape(m.get('threshold', ''))}</td>"
                f"<td{cls}>{html.escape(verdict)}</td></tr>"
            )
    columns = ("analysis", "metric", "value", "unit", "threshold", "verdict")
    head = "<tr>" + "".join(f"<th>{c}</th>" for c in columns) + "</tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def _figures(run: dict[str, Any]) -> str:
    parts = []
    for png in sorted(run["dir"].rglob("*.png")):
        data = base64.b64encode(png.read_bytes()).decode()
        caption = html.escape(str(png.relative_to(run["dir"])))
        parts.append(
            f'<figure><img alt="{caption}" src="data:image/png;base64,{data}">'
            f"<figcaption>{caption}</figcaption></figure>"
        )
    return "".join(parts) or "<p>No plots were written.</p>"


def _comparison(a: dict[str, Any], b: dict[str, Any]) -> str:
    def flat(run: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
        return {(an, n): m for an, ms in run["metrics"]["analyses"].items() for n, m in ms.items()}

    fa, fb = flat(a), flat(b)
    rows = []

    def judged(key: tuple[str, str]) -> tuple[int, tuple[str, str]]:
        has = "verdict" in fa.get(key, {}) or "verdict" in fb.get(key, {})
        return (0 if has else 1, key)

    for key in sorted(set(fa) | set(fb), key=judged):
        ma, mb = fa.get(key, {}), fb.get(key, {})
        va, vb = ma.get("value"), mb.get("value")
        diff = vb - va if isinstance(va, int | float) and isinstance(vb, int | float) else None
        cells = []
        for m in (ma, mb):
            verdict = m.get("verdict", "")
            cls = f' class="{verdict}"' if verdict else ""
            cells.append(
                f'<td class="num">{_fmt(m.get("value"))}</td><td{cls}>{html.escape(verdict)}</td>'
            )
        rows.append(
            f"<tr><td>{html.escape(key[0])}</td><td>{html.escape(key[1])}</td>{cells[0]}{cells[1]}"
            f'<td class="num">{_fmt(diff)}</td></tr>'
        )
    name_a, name_b = (html.escape(r["dir"].name) for r in (a, b))
    head = (
        f"<tr><th>analysis</th><th>metric</th><th>{name_a}</th><th>verdict</th><th>{name_b}</th>"
        "<th>verdict</th><th>difference (B - A)</th></tr>"
    )
    return f"<h2>Comparison: {name_a} (A) and {name_b} (B)</h2><table>{head}{''.join(rows)}</table>"


def render_report(run_dirs: list[str | Path]) -> str:
    """The HTML of a report on one or more run directories."""
    if not run_dirs:
        raise SkydaskError("skydask report needs at least one run directory")
    runs = [_load_run(Path(d)) for d in run_dirs]
    body = [
        "<h1>skydask validation report</h1>"
        f"<p>Generated {datetime.now(UTC):%Y-%m-%d %H:%M UTC}.</p>"
    ]
    if len(runs) == 2:
        body.append(_comparison(runs[0], runs[1]))
    for run in runs:
        m, p = run["metrics"], run["provenance"]
        status = "pass" if m.get("passed") else "fail"
        body.append(
            f"<h2>{html.escape(str(m.get('spec', run['dir'].name)))} "
            f"<small>({html.escape(str(run['dir']))})</small></h2>"
            f'<p class="summary-{status}">Verdict: '
            f"<b>{'all thresholds pass' if status == 'pass' else 'FAIL'}</b>"
            f" ({m.get('n_failed', 0)} of {m.get('n_thresholds', 0)} thresholds failed). "
            f"Catalogue {html.escape(str(p.get('catalog', {}).get('name_or_path', '')))}, "
            f"code {html.escape(str(p.get('code', {}).get('skydask', '')))} "
            f"{html.escape(str(p.get('code', {}).get('git_commit') or ''))[:12]}.</p>"
        )
        body.append(_metrics_table(run))
        body.append(_figures(run))
        body.append(
            "<details><summary>Provenance</summary><pre>"
            + html.escape(json.dumps(p, indent=2))
            + "</pre></details>"
        )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>skydask report</title><style>{_STYLE}</style></head><body>"
        + "".join(body)
        + "</body></html>"
    )


def write_report(run_dirs: list[str | Path], out: str | Path) -> Path:
    """Write the report atomically to ``out`` (an HTML file)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(render_report(run_dirs))
    tmp.replace(out)
    return out
