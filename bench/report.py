"""Rows, budgets and the two outputs: a Markdown table and a JSON file."""

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Row:
    key: str
    scenario: str
    budget: str = ""
    rps: float | None = None
    ratio: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    other: str = ""  # the figure of rows that are not requests per second
    errors: int = 0
    error_detail: str = ""
    passed: bool | None = None  # None: no budget, or not measured
    not_measured: str = ""
    runs: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def result(self) -> str:
        if self.not_measured:
            return f"not measured: {self.not_measured}"
        if self.errors:
            return f"FAIL (errors: {self.error_detail})" if self.error_detail else "FAIL (errors)"
        if self.passed is None:
            return "—" if not self.budget else "n/a"
        return "pass" if self.passed else "FAIL"


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def markdown_table(rows: list[Row]) -> str:
    lines = [
        "| scenario | rps | ratio | p50 ms | p99 ms | other | errors | budget | result |",
        "|---|---:|---:|---:|---:|---|---:|---|---|",
    ]
    for row in rows:
        lines.append(
            "| "
            + " | ".join(
                [
                    row.scenario,
                    _fmt(row.rps, 0),
                    _fmt(row.ratio, 3),
                    _fmt(row.p50_ms, 2),
                    _fmt(row.p99_ms, 2),
                    row.other or "—",
                    str(row.errors),
                    row.budget or "—",
                    row.result,
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def markdown_report(meta: dict[str, Any], rows: list[Row]) -> str:
    machine = meta["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    params = meta["params"]
    head = [
        f"# make bench ({meta['mode']}): {meta['started_at']}",
        "",
        f"- machine: {machine['cores']} cores, {machine['cpu_model']}, Linux "
        f"{machine['kernel']}, Python {machine['python']}",
        f"- versions: {versions}",
        f"- runs per figure: {params['runs']} (medians), {params['duration']} s each, "
        f"wrk {params['threads']} thread(s) x {params['connections']} connections",
        f"- ceiling: {_fmt(meta['ceiling_rps'], 0)} rps (median of the first and last "
        f"measurements' runs; first {_fmt(meta['ceiling_first_rps'], 0)}, last "
        f"{_fmt(meta['ceiling_last_rps'], 0)}, drift {_fmt(meta['ceiling_drift_pct'], 1)} %)",
        f"- duration of the whole run: {meta['elapsed_seconds']:.0f} s",
        "",
    ]
    notes = [f"- {note}" for note in meta.get("notes", [])]
    return "\n".join([*head, markdown_table(rows), "", *notes, ""])


def write(results_dir: Path, stem: str, meta: dict[str, Any], rows: list[Row]) -> tuple[Path, Path]:
    results_dir.mkdir(parents=True, exist_ok=True)
    json_path = results_dir / f"{stem}.json"
    md_path = results_dir / f"{stem}.md"
    payload = {
        **meta,
        "scenarios": [{**asdict(row), "result": row.result} for row in rows],
    }
    json_path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    md_path.write_text(markdown_report(meta, rows))
    return json_path, md_path
