"""What a person reads: the list of failed expectations, and the HTML data docs page.

The page is self-contained (inline style, no scripts, no external links): GX's own data docs pull
jQuery/Bootstrap/Vega from CDNs and a logo from S3, so they neither open offline nor stay quiet.
Both take the plain-JSON summaries of `simgan.validation.gx.summarise`.
"""

from __future__ import annotations

import html
import json

LISTED = 15  # failed expectations listed per suite on stderr (all of them are in validation.json)


def describe_failures(summaries: list[dict]) -> str:
    """The readable list: suite, expectation, column, how many rows, a few offending ids."""
    lines = []
    for summary in summaries:
        if summary["success"]:
            continue
        lines.append(
            f"suite {summary['suite']} ({summary.get('manifest', '')}): "
            f"{summary['failed']} of {summary['evaluated']} expectations failed on {summary['rows']} rows"
        )
        for check in summary["failures"][:LISTED]:
            where = (f" column {check['column']}" if check["column"] else "") + _condition_text(check["kwargs"])
            if "error" in check:
                how = f"could not run: {check['error']}"
            elif "unexpected_count" in check:
                how = f"{check['unexpected_count']} of {check['element_count']} rows"
                ids = [_example(e) for e in check.get("examples", [])]
                if ids:
                    how += ", e.g. " + ", ".join(ids)
            elif check.get("mismatched", {}).get("missing"):
                how = "missing columns " + ", ".join(check["mismatched"]["missing"])
            else:
                how = f"observed {json.dumps(check.get('observed_value'))}"
            lines.append(f"  - {check['expectation']}{where}: {how}")
        if summary["failed"] > LISTED:
            lines.append(f"  … and {summary['failed'] - LISTED} more, listed in validation.json")
    return "\n".join(lines)


def _condition_text(kwargs: dict) -> str:
    """ " (rows where split == test)" for a suite's row_condition; "" without one."""
    condition = kwargs.get("row_condition")
    if not condition:
        return ""
    if isinstance(condition, dict) and condition.get("type") == "comparison":
        condition = f"{condition['column']['name']} {condition['operator']} {condition['parameter']}"
    elif isinstance(condition, dict):
        condition = condition.get("pass_through_filter") or json.dumps(condition)
    return f" (rows where {condition})"


def _example(example: dict) -> str:
    if example.get("id") is not None:
        return f"id={example['id']}"
    if example.get("row") is not None:
        return f"row={example['row']}"
    return json.dumps(example)


STYLE = """body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;width:100%;margin-bottom:2em}
th,td{border:1px solid #ccc;padding:4px 6px;text-align:left;vertical-align:top}th{background:#f0f0f0}
tr.fail td{background:#fde8e8}.ok{color:#1a7f37;font-weight:bold}.bad{color:#c62828;font-weight:bold}
code{font-size:12px}small{color:#666}"""


def render_html(report: dict, title: str) -> str:
    """A self-contained page (no scripts, no external links): one table per suite, every expectation."""
    escape = html.escape
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>",
        f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>",
        f"<p>Overall: <span class='{'ok' if report['success'] else 'bad'}'>"
        f"{'passed' if report['success'] else 'FAILED'}</span></p>",
    ]
    for name, summary in report["suites"].items():
        status = "<span class='ok'>passed</span>" if summary["success"] else "<span class='bad'>FAILED</span>"
        parts.append(
            f"<h2>{escape(name)} — {status}</h2><p><small>{escape(summary.get('manifest', ''))} · "
            f"{summary['rows']} rows · image size {summary['image_size'][0]}×{summary['image_size'][1]} · "
            f"{summary['passed']}/{summary['evaluated']} expectations passed</small></p>"
        )
        parts.append(
            "<table><tr><th></th><th>expectation</th><th>column</th><th>arguments</th>"
            "<th>unexpected / rows</th><th>examples</th><th>why</th></tr>"
        )
        for check in summary["checks"]:
            arguments = {
                k: v for k, v in check["kwargs"].items() if k not in ("column", "column_A", "column_B", "row_condition")
            }
            if "unexpected_count" in check:
                counted = f"{check['unexpected_count']} / {check['element_count']}"
            elif check["expectation"] == "expect_table_columns_to_match_set":
                missing = check.get("mismatched", {}).get("missing")
                counted = f"missing {', '.join(missing)}" if missing else "all present"
            elif "observed_value" in check:
                counted = f"observed {json.dumps(check['observed_value'])[:200]}"
            else:
                counted = ""
            examples = ", ".join(_example(e) for e in check.get("examples", []))
            if "error" in check:
                examples = f"error: {check['error']}"
            parts.append(
                f"<tr class='{'' if check['success'] else 'fail'}'><td>{'✓' if check['success'] else '✗'}</td>"
                f"<td><code>{escape(check['expectation'])}</code></td>"
                f"<td>{escape((check['column'] or '') + _condition_text(check['kwargs']))}</td>"
                f"<td><code>{escape(json.dumps(arguments))}</code></td><td>{escape(counted)}</td>"
                f"<td>{escape(examples)}</td><td><small>{escape(str(check['notes'] or ''))}</small></td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)
