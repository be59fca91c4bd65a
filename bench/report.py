"""Rows, budgets and the two outputs: a Markdown table and a JSON file.

Each row holds our figure, the bare framework ceiling measured in the same row, the peer's
figure (with `--peer elizaos`, for the rows that compare with it) and the two ratios.
"""

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
    rps: float | None = None  # ours
    p50_ms: float | None = None
    p99_ms: float | None = None
    bare_rps: float | None = None  # the bare framework ceiling, same row
    peer_rps: float | None = None  # the peer, same row
    peer_p50_ms: float | None = None
    peer_p99_ms: float | None = None
    vs_bare: float | None = None  # ours / bare
    vs_peer: float | None = None  # ours / peer (rps), or ours p99 / peer p99 (fan-out)
    other: str = ""  # the figures that are not requests per second
    errors: int = 0
    error_detail: str = ""
    passed: bool | None = None  # None: no budget, or not measured
    not_measured: str = ""  # the scenario itself could not be measured
    budget_unmeasured: str = ""  # measured, but its budget's yardstick was not (no peer...)
    runs: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def result(self) -> str:
        if self.not_measured:
            return f"not measured: {self.not_measured}"
        if self.errors:
            return f"FAIL (errors: {self.error_detail})" if self.error_detail else "FAIL (errors)"
        if self.budget_unmeasured:
            return f"not measured ({self.budget_unmeasured})"
        if self.passed is None:
            return "—" if not self.budget else "n/a"
        return "pass" if self.passed else "FAIL"

    @property
    def latency_row(self) -> bool:
        return self.rps is None and self.p50_ms is not None


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def _figure(rps: float | None, p50: float | None, p99: float | None, latency: bool) -> str:
    if latency:
        if p50 is None and p99 is None:
            return "—"
        return f"p50 {_fmt(p50, 1)} / p99 {_fmt(p99, 1)} ms"
    return "—" if rps is None else f"{rps:,.0f} rps"


def markdown_table(rows: list[Row]) -> str:
    lines = [
        "| scenario | ours | bare ceiling | peer | ours/bare | ours/peer | other | errors "
        "| budget | result |",
        "|---|---:|---:|---:|---:|---:|---|---:|---|---|",
    ]
    for row in rows:
        latency = row.latency_row
        lines.append(
            "| "
            + " | ".join(
                [
                    row.scenario,
                    _figure(row.rps, row.p50_ms, row.p99_ms, latency),
                    "—" if row.bare_rps is None else f"{row.bare_rps:,.0f} rps",
                    _figure(row.peer_rps, row.peer_p50_ms, row.peer_p99_ms, latency),
                    _fmt(row.vs_bare, 2),
                    (_fmt(row.vs_peer, 2) + (" (p99)" if latency else ""))
                    if row.vs_peer is not None
                    else "—",
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
    bare = meta["bare"]
    head = [
        f"# make bench ({meta['mode']}): {meta['started_at']}",
        "",
        f"- machine: {machine['cores']} cores, {machine['cpu_model']}, Linux "
        f"{machine['kernel']}, Python {machine['python']}",
        f"- versions: {versions}",
        f"- load: `wrk {meta['wrk']}`, {params['runs']} runs per figure (medians), "
        "interleaved: per run ours, then the bare ceiling, then the peer",
        f"- bare framework ceiling (DRF view, no middleware/authentication/permission, the "
        f"Procfile's api command): median {_fmt(bare['median_rps'], 0)} rps over "
        f"{bare['runs']} runs, per-row medians {_fmt(bare['min_rps'], 0)} to "
        f"{_fmt(bare['max_rps'], 0)} rps",
        f"- peer: {meta['peer']}",
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
