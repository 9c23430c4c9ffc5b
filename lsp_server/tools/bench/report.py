"""The results as a person reads them (a table, the targets), as tools read them (JSON) and as a
picture (a PNG drawn with matplotlib). Pure apart from writing the files asked for."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .quality import RETYPE_LINES

#: The issue's targets. `profile` is the profile a target is about (`vllm-ls`: the defaults).
OVERHEAD_MAX = 1.05
TOKENS_AFTER_CANCEL_MAX = 2.0
CACHE_HIT_MIN = 0.90
REQUESTS_PER_100_MAX = 15.0
WASTE_MAX = 0.20
CONCURRENT_P95_FACTOR = 3.0
REMOTE_RSS_MAX_MB = 150.0
PAUSES_SERVED_MIN = 0.80
SHOWN_P50_VS_BASELINE_MAX = 0.6
ACCEPT_P50_MAX_MS = 50.0
DEFAULTS_PROFILE = "vllm-ls"
#: The profile the issue-12 targets compare against: the server as it was before them (`v0.1`).
BASELINE_PROFILE = "v0.1"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def _num(value: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _taken(acceptance: dict[str, Any] | None) -> str:
    """Suggestions the typist would have taken of those shown, as the server counted the reports."""
    if not acceptance or not acceptance.get("shown"):
        return "-"
    return f"{acceptance['accepted']}/{acceptance['shown']}"


def baseline_of(run: dict[str, Any], runs: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The baseline profile's run with as many editors as `run` (None: not in this bench)."""
    return next((r for r in runs if r["profile"] == BASELINE_PROFILE and r["editors"] == run["editors"]), None)


def _p50(summary: dict[str, Any] | None) -> float | None:
    return None if not summary else summary.get("p50")


#: Figures compared with the baseline profile: name → how to read it from a run.
COMPARED = {
    "pauses_served_ratio": lambda r: r.get("pauses_served_ratio"),
    "shown_latency_p50": lambda r: _p50(r.get("shown_latency_ms")),
    "shown_latency_p95": lambda r: (r.get("shown_latency_ms") or {}).get("p95"),
    "accept_latency_p50": lambda r: _p50(r.get("accept_latency_ms")),
    "waste_ratio": lambda r: r.get("waste_ratio"),
    "tokens_shown_per_engine_token": lambda r: r.get("tokens_shown_per_engine_token"),
    "engine_requests_per_100_keystrokes": lambda r: r.get("engine_requests_per_100_keystrokes"),
}


def versus_baseline(runs: Sequence[dict[str, Any]]) -> None:
    """Add `vs_baseline` to every run: each compared figure as a ratio to the baseline's (same
    editor count); None where either side has no value or the baseline's is 0."""
    for run in runs:
        base = baseline_of(run, runs)
        if base is None:
            run.pop("vs_baseline", None)
            continue
        ratios: dict[str, Any] = {"profile": BASELINE_PROFILE}
        for name, read in COMPARED.items():
            mine, theirs = read(run), read(base)
            ratios[name] = None if mine is None or not theirs else round(mine / theirs, 3)
        run["vs_baseline"] = ratios


def _vs(run: dict[str, Any], name: str) -> str:
    value = (run.get("vs_baseline") or {}).get(name)
    return _num(value, "{:.2f}x")


def feel_table(runs: Sequence[dict[str, Any]]) -> list[str]:
    """What the users felt: pauses served, how soon, and accepting suggestions."""
    header = ("profile", "editors", "actions", "pauses", "served", "shown p50", "p95 ms", f"p50/{BASELINE_PROFILE}",
              "accepts", "accept p50", "p95 ms", "accepted", "taken", "typing", "answered")
    rows = [header]
    for run in runs:
        pauses, latency = run["pauses"], run["shown_latency_ms"]
        accepts = run.get("accepts") or {"total": 0, "served": 0}
        accept = run.get("accept_latency_ms") or {"p50": None, "p95": None}
        rows.append((
            run["profile"], str(run["editors"]), str(run["keystrokes"]), f"{pauses['served']}/{pauses['total']}",
            _pct(run.get("pauses_served_ratio")), _ms(latency["p50"]), _ms(latency["p95"]),
            _vs(run, "shown_latency_p50"), f"{accepts['served']}/{accepts['total']}", _ms(accept["p50"]),
            _ms(accept["p95"]), _pct(run.get("accepted_share")), _taken(run.get("acceptance")),
            str(run["shown_while_typing"]), f"{run['requests']['answered']}/{run['requests']['sent']}",
        ))
    return _align(rows)


def accept_source_lines(runs: Sequence[dict[str, Any]]) -> list[str]:
    """Accept latency by where the answer came from (runs with the servers' traces only)."""
    lines = []
    for run in runs:
        split = run.get("accept_latency_by_source_ms")
        if not split:
            continue
        parts = [f"{source} {_ms(s['p50'])} ms (n={s['n']})" for source, s in split.items() if s["n"]]
        lines.append(f"  {run['profile']} ({run['editors']} ed.) accept p50 by source: "
                     + (", ".join(parts) if parts else "none served"))
    return ["accept latency by source (cache: the next lines were there; stream: waited on a running one; "
            "engine: a new request):", *lines, ""] if lines else []


def runs_table(runs: Sequence[dict[str, Any]]) -> list[str]:
    """What it cost: engine requests, waste, cache reuse, overhead and memory."""
    header = ("profile", "editors", "req/100k", f"/{BASELINE_PROFILE}", "waste", "shown/tok", "spec", "tok/cancel",
              "cache hit", "overhead", "RSS srv", "RSS eng")
    rows = [header]
    for run in runs:
        rows.append((
            run["profile"], str(run["editors"]),
            _num(run["engine_requests_per_100_keystrokes"]), _vs(run, "engine_requests_per_100_keystrokes"),
            _pct(run["waste_ratio"]), _num(run.get("tokens_shown_per_engine_token"), "{:.2f}"),
            _pct(run.get("speculation_share")),
            _num(run["tokens_after_cancel"], "{:.2f}"), _pct(run["prefix_cache_hit_ratio"]),
            _num(run["overhead_ratio"], "{:.2f}x"),
            _num(run["peak_rss_mb"], "{:.0f} MB"), _num(run["peak_rss_engine_mb"], "{:.0f} MB"),
        ))
    return _align(rows)


def overhead_lines(runs: Sequence[dict[str, Any]]) -> list[str]:
    lines = []
    seen = set()
    for run in runs:
        if run["profile"] in seen or not run.get("overhead"):
            continue
        seen.add(run["profile"])
        o = run["overhead"]
        same = all(p["same_prompt"] for p in o["probes"])
        lines.append(f"{run['profile']}: server p50 {_ms(o['server_ms_p50'])} ms vs direct engine call p50 "
                     f"{_ms(o['direct_ms_p50'])} ms on the same prompts ({len(o['probes'])} probes"
                     f"{'' if same else ', PROMPT TOKEN COUNTS DIFFER'})")
    return lines


def truth_lines(runs: Sequence[dict[str, Any]]) -> list[str]:
    """Per run: what the engine itself says it generated, and what of it nobody read."""
    lines = []
    for run in runs:
        truth = run.get("engine_truth")
        if not truth:
            continue
        after = truth.get("after_stop_per_stop")
        lag = run.get("event_loop_lag_ms") or {}
        lines.append(
            f"{run['profile']} ({run['editors']} ed.): {truth['source']} counted {truth['generated']} tokens "
            f"generated, {truth['received']} read; {truth['unread']} unread by {truth['requests_stopped']} stopped "
            f"requests ({_num(truth['unread_per_stop'], '{:.2f}')} each"
            + (f", {after:.2f} after the stop" if after is not None else "")
            + f"; vLLM's frontend said {_num(truth['frontend_unread_per_stop'], '{:.2f}')})"
            + (f"; event loop lag max {_ms(lag.get('max'))} ms, p99 {_ms(lag.get('p99'))} ms" if lag.get("max") is not None
               else ""))
    return lines


def quality_table(result: dict[str, Any] | None) -> list[str]:
    if not result or not result["variants"]:
        return []
    rows = [("variant", "line exact", "line sim", "block exact", "block sim", "call exact", "call sim",
             "all exact", "all sim", "1st line", "doubled", "retyped")]
    for v in result["variants"]:
        call = v.get("call") or {"exact_match": 0.0, "edit_similarity": 0.0, "n": 0}
        rows.append((v["variant"], _pct(v["line"]["exact_match"]), f"{v['line']['edit_similarity']:.2f}",
                     _pct(v["block"]["exact_match"]), f"{v['block']['edit_similarity']:.2f}",
                     _pct(call["exact_match"]), f"{call['edit_similarity']:.2f}",
                     _pct(v["all"]["exact_match"]), f"{v['all']['edit_similarity']:.2f}",
                     _pct(v["all"]["first_line_match"]), str(v["all"].get("closers_doubled", 0)),
                     str(v["all"].get("suffix_lines_retyped", 0))))
    first = result["variants"][0]
    calls = (first.get("call") or {}).get("n", 0)
    return [f"infill quality: {result['holes']} holes ({first['line']['n']} lines, {first['block']['n']} blocks, "
            f"{calls} calls); doubled: suggestions that leave a closer twice; retyped: lines that re-type one of "
            f"the {RETYPE_LINES} lines after the cursor", *_align(rows)]


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with the value measured and whether it is met (None: this run cannot tell)."""
    runs = result["runs"]
    out: list[dict[str, Any]] = []

    def add(name: str, value: Any, met: bool | None, shown: str) -> None:
        out.append({"target": name, "value": value, "met": met, "shown": shown})

    ours = [r for r in runs if r["profile"] == DEFAULTS_PROFILE]
    naive = [r for r in runs if r["profile"] == "naive"]
    if ours:
        # The targets compare with the baseline in the same run: judge a run that has one.
        run = min([r for r in ours if baseline_of(r, runs)] or ours, key=lambda r: r["editors"])
        ratio = run["overhead_ratio"]
        add(f"LSP overhead p50 <= {OVERHEAD_MAX:.2f}x the direct engine call", ratio,
            None if ratio is None else ratio <= OVERHEAD_MAX, _num(ratio, "{:.3f}x"))
        tac = run["tokens_after_cancel"]
        source = run.get("engine_truth", {}).get("source", "engine_tokens_generated")
        add(f"tokens nobody read per stopped request <= {TOKENS_AFTER_CANCEL_MAX:g} ({source})", tac,
            None if tac is None else tac <= TOKENS_AFTER_CANCEL_MAX, _num(tac, "{:.2f}"))
        hit = run["prefix_cache_hit_ratio"]
        add(f"prefix-cache hit >= {CACHE_HIT_MIN:.0%}", hit, None if hit is None else hit >= CACHE_HIT_MIN, _pct(hit))
        req = run["engine_requests_per_100_keystrokes"]
        versus = f" (naive: {_num(naive[0]['engine_requests_per_100_keystrokes'])})" if naive else ""
        add(f"engine requests <= {REQUESTS_PER_100_MAX:g} per 100 keystrokes", req,
            None if req is None else req <= REQUESTS_PER_100_MAX, _num(req) + versus)
        waste = run["waste_ratio"]
        add(f"waste <= {WASTE_MAX:.0%} of generated tokens", waste, waste <= WASTE_MAX, _pct(waste))
        served = run.get("pauses_served_ratio")
        add(f"typing pauses served >= {PAUSES_SERVED_MIN:.0%}", served,
            None if served is None else served >= PAUSES_SERVED_MIN,
            f"{_pct(served)} ({run['pauses']['served']}/{run['pauses']['total']})")
        accept = _p50(run.get("accept_latency_ms"))
        accepts = run.get("accepts") or {"served": 0, "total": 0}
        cached = (run.get("accept_latency_by_source_ms") or {}).get("cache")
        if cached is not None:
            # The target: when the next lines were already generated (answered from the cache).
            add(f"accept latency p50 <= {ACCEPT_P50_MAX_MS:g} ms when the next lines were there", cached["p50"],
                None if cached["p50"] is None else cached["p50"] <= ACCEPT_P50_MAX_MS,
                f"{_ms(cached['p50'])} ms ({cached['n']} accepts answered from the cache; all "
                f"{accepts['served']} served: p50 {_ms(accept)} ms)")
        else:
            add(f"accept latency p50 <= {ACCEPT_P50_MAX_MS:g} ms", accept,
                None if accept is None else accept <= ACCEPT_P50_MAX_MS,
                f"{_ms(accept)} ms ({accepts['served']} of {accepts['total']} accepts followed by a suggestion)")
        base = baseline_of(run, runs)
        if base is not None:
            mine, theirs = _p50(run["shown_latency_ms"]), _p50(base["shown_latency_ms"])
            factor = None if mine is None or not theirs else mine / theirs
            add(f"shown latency p50 <= {SHOWN_P50_VS_BASELINE_MAX:g}x the {BASELINE_PROFILE} profile's", factor,
                None if factor is None else factor <= SHOWN_P50_VS_BASELINE_MAX,
                f"{_ms(mine)} vs {_ms(theirs)} ms" + ("" if factor is None else f" ({factor:.2f}x)"))
            mine, theirs = req, base["engine_requests_per_100_keystrokes"]
            add(f"engine requests per 100 keystrokes <= the {BASELINE_PROFILE} profile's", mine,
                None if mine is None or theirs is None else mine <= theirs, f"{_num(mine)} vs {_num(theirs)}")
    by_profile: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        by_profile.setdefault(run["profile"], []).append(run)
    for profile, group in by_profile.items():
        single = [r for r in group if r["editors"] == 1]
        many = [r for r in group if r["editors"] > 1]
        if not single or not many:
            continue
        crowd = max(many, key=lambda r: r["editors"])
        base, p95 = single[0]["shown_latency_ms"]["p95"], crowd["shown_latency_ms"]["p95"]
        answered = crowd["requests"]["answered"] == crowd["requests"]["sent"]
        factor = None if not base or p95 is None else p95 / base
        add(f"{crowd['editors']} editors ({profile}): every request answered, p95 <= "
            f"{CONCURRENT_P95_FACTOR:g}x the single editor's", factor,
            None if factor is None else answered and factor <= CONCURRENT_P95_FACTOR,
            f"{crowd['requests']['answered']}/{crowd['requests']['sent']} answered, p95 {_ms(p95)} vs {_ms(base)} ms"
            + ("" if factor is None else f" ({factor:.1f}x)"))
    quality = result.get("quality") or {}
    scored = {v["variant"]: v for v in quality.get("variants", [])}
    if DEFAULTS_PROFILE in scored and "raw" in scored:
        ours_q, raw_q = scored[DEFAULTS_PROFILE]["all"], scored["raw"]["all"]
        add("infill first-line match >= the raw baseline's", ours_q["first_line_match"],
            ours_q["first_line_match"] >= raw_q["first_line_match"],
            f"{_pct(ours_q['first_line_match'])} vs {_pct(raw_q['first_line_match'])}")
        doubled = ours_q.get("closers_doubled")
        if doubled is not None:
            add("infill: no suggestion leaves a closer twice", doubled, doubled == 0, str(doubled))
    if result.get("engine", {}).get("mode") == "remote":
        peak = max((r["peak_rss_mb"] or 0) for r in runs) if runs else None
        add(f"server RSS in remote mode <= {REMOTE_RSS_MAX_MB:g} MB", peak,
            None if not peak else peak <= REMOTE_RSS_MAX_MB, _num(peak, "{:.0f} MB"))
    return out


def render(result: dict[str, Any]) -> str:
    engine, machine = result["engine"], result["machine"]
    load = machine.get("load_average")
    lines = [
        f"vllm-ls bench: {engine['name']} ({engine['mode']}), {machine['cores']} cores ({machine['cpu']}"
        + (f", load average {load['start']:.1f} at the start, {load['end']:.1f} at the end" if load else "")
        + f"), {result['config']['cps']:g} chars/s, seed {result['config']['seed']}",
        "",
        "what users feel:",
        *feel_table(result["runs"]),
        "",
        *accept_source_lines(result["runs"]),
        "what it costs:",
        *runs_table(result["runs"]),
        "",
        *truth_lines(result["runs"]),
        *overhead_lines(result["runs"]),
    ]
    quality = quality_table(result.get("quality"))
    if quality:
        lines += ["", *quality]
    checks = result.get("targets") or targets(result)
    if checks:
        lines += ["", "targets:"]
        for check in checks:
            mark = {True: "met ", False: "MISS", None: "  ? "}[check["met"]]
            lines.append(f"  [{mark}] {check['target']}: {check['shown']}")
    return "\n".join(lines)


def write_json(result: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def plot(result: dict[str, Any], path: Path) -> None:
    """Bars per run for the figures that compare profiles, the targets as dashed lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = result["runs"]
    labels = [r["profile"] if _single_editor_count(runs) else f"{r['profile']}\n{r['editors']} ed." for r in runs]
    panels = [
        ("typing pauses with a completion shown", [r.get("pauses_served_ratio") for r in runs], PAUSES_SERVED_MIN),
        ("shown latency at pauses, p50 / p95 (ms)", "shown_latency_ms", None),
        ("accept latency, p50 / p95 (ms)", "accept_latency_ms", ACCEPT_P50_MAX_MS),
        ("share of the text accepted", [r.get("accepted_share") for r in runs], None),
        ("engine requests / 100 keystrokes", [r["engine_requests_per_100_keystrokes"] for r in runs],
         REQUESTS_PER_100_MAX),
        ("waste (share of generated tokens)", [r["waste_ratio"] for r in runs], WASTE_MAX),
        ("tokens shown per engine token", [r.get("tokens_shown_per_engine_token") for r in runs], None),
        ("prefix-cache hit ratio", [r["prefix_cache_hit_ratio"] for r in runs], CACHE_HIT_MIN),
        ("tokens nobody read per stop", [r["tokens_after_cancel"] for r in runs], TOKENS_AFTER_CANCEL_MAX),
        ("LSP overhead (x direct call)", [r["overhead_ratio"] for r in runs], OVERHEAD_MAX),
    ]
    quality = result.get("quality")
    count = len(panels) + (1 if quality and quality["variants"] else 0)
    columns = 4 if count > 6 else 3
    rows = -(-count // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.0 * columns, 3.0 * rows), dpi=80)
    flat = list(axes.flat)
    colors = [_color(r["profile"]) for r in runs]
    for ax, (title, values, target) in zip(flat, panels):
        ax.set_title(title, fontsize=10)
        if isinstance(values, str):
            summaries = [r.get(values) or {} for r in runs]
            p50 = [m.get("p50") or 0 for m in summaries]
            p95 = [m.get("p95") or 0 for m in summaries]
            xs = range(len(runs))
            ax.bar([x - 0.2 for x in xs], p50, width=0.4, color=colors, label="p50")
            ax.bar([x + 0.2 for x in xs], p95, width=0.4, color=colors, alpha=0.5, label="p95")
            for x, summary, low in zip(xs, summaries, p50):
                if not summary.get("n"):
                    ax.text(x, 0, "none shown", ha="center", va="bottom", fontsize=8)
                else:
                    ax.text(x - 0.2, low, f"{low:.0f}", ha="center", va="bottom", fontsize=8)
            ax.legend(fontsize=8)
        else:
            ax.bar(range(len(runs)), [v or 0 for v in values], color=colors)
            for x, v in enumerate(values):
                ax.text(x, v or 0, "n/a" if v is None else f"{v:.3g}", ha="center", va="bottom", fontsize=8)
        if target is not None:
            ax.axhline(target, color="black", linestyle="--", linewidth=1)
        ax.margins(y=0.15)
        ax.set_xticks(range(len(runs)), labels, fontsize=8)
    if count > len(panels):
        ax = flat[len(panels)]
        variants = quality["variants"]
        xs = range(len(variants))
        ax.set_title("infill: edit similarity (exact match)", fontsize=10)
        ax.bar(xs, [v["all"]["edit_similarity"] for v in variants], color="#4c72b0")
        for x, v in zip(xs, variants):
            ax.text(x, v["all"]["edit_similarity"], f"{v['all']['exact_match']:.0%}", ha="center", va="bottom",
                    fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_xticks(list(xs), [v["variant"] for v in variants], fontsize=8)
    for ax in flat[count:]:
        ax.axis("off")
    engine = result["engine"]
    fig.suptitle(f"vllm-ls bench — {engine['name']} ({engine['mode']}), {result['machine']['cores']} cores; "
                 "dashed: target", fontsize=11)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _single_editor_count(runs: Sequence[dict[str, Any]]) -> bool:
    return len({r["editors"] for r in runs}) <= 1


def _color(profile: str) -> str:
    return {"vllm-ls": "#4c72b0", "naive": "#c44e52", BASELINE_PROFILE: "#8c8c8c"}.get(profile, "#55a868")


def _align(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
            .rstrip() for row in rows]
