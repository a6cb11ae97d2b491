"""Transparency figures per period, and their exports (CSV, JSON, PDF) and charts (SVG).

The figures come from each domain's own read functions: generations (provenance), refusals by
reason (gateway), reviews held (gateway refusals ``moderation.held``), account sanctions (identity),
filings, assessments and suspensions (governance), and the complaint / takedown / appeal / authority
report figures from ``synthgate.cases.service.period_counts``. A source that does not exist in this
installation is reported as *unavailable*, never as zero: a zero would claim that nothing happened.

A period is whole UTC days, ``start`` to ``end`` inclusive.
"""

from __future__ import annotations

import csv
import datetime as dt
import importlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from sqlalchemy.orm import Session

from synthgate import __version__
from synthgate.db import utcnow
from synthgate.errors import InvalidInput

UNAVAILABLE = "unavailable"
"""A whole source is missing from this installation."""
NOT_APPLICABLE = "n/a"
"""A figure with nothing to compute from in the period (a median of no cases)."""
MAX_PERIOD_DAYS = 3660
SANCTIONS = ("warned", "restricted", "suspended", "closed")

SECTION_TITLES = {
    "generations": "Generations / 生成内容",
    "refusals": "Refusals by reason / 拒绝（按原因）",
    "reviews": "Reviews / 人工审核",
    "sanctions": "Account sanctions / 账号处置",
    "cases": "Complaints, takedowns, appeals, authority reports / 投诉、处置、申诉、报告",
    "governance": "Filings, assessments, suspensions / 备案、评估、暂停",
}


@dataclass
class Figures:
    start: dt.date
    end: dt.date
    generated_at: dt.datetime
    sections: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    """Section name → figures, or None when the source is not available here."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": {"start": self.start.isoformat(), "end": self.end.isoformat()},
            "generated_at": self.generated_at.isoformat(),
            "generator": f"synthgate {__version__}",
            "sections": {
                name: (UNAVAILABLE if values is None else values) for name, values in self.sections.items()
            },
        }

    def rows(self) -> Iterator[tuple[str, str, str]]:
        """(section, figure, value) for every figure; nested figures are dotted names."""
        for name, values in self.sections.items():
            if values is None:
                yield name, "", UNAVAILABLE
                continue
            yield from ((name, key, value) for key, value in _flatten(values))

    def series(self, section: str, key: str) -> list[tuple[str, int]]:
        values = self.sections.get(section) or {}
        found = values.get(key) if isinstance(values, dict) else None
        if not isinstance(found, dict):
            return []
        return [(str(k), int(v)) for k, v in found.items() if isinstance(v, int | float)]


def _flatten(values: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            if not value:
                yield name, "0"
            yield from _flatten(value, name + ".")
        elif value is None:
            yield name, NOT_APPLICABLE
        elif isinstance(value, float):
            yield name, f"{value:.2f}"
        else:
            yield name, str(value)


def period_bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    if end < start:
        raise InvalidInput("the period ends before it starts", field="end")
    if (end - start).days > MAX_PERIOD_DAYS:
        raise InvalidInput(f"a period may span at most {MAX_PERIOD_DAYS} days", field="end")
    return (
        dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC),
        dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC),
    )


def parse_period(
    start: str | None, end: str | None, *, today: dt.date | None = None
) -> tuple[dt.date, dt.date]:
    """``YYYY-MM-DD`` bounds; by default the last 30 days up to today."""
    today = today or utcnow().date()
    try:
        end_day = dt.date.fromisoformat(end) if end else today
        start_day = dt.date.fromisoformat(start) if start else end_day - dt.timedelta(days=29)
    except ValueError as exc:
        raise InvalidInput("dates are YYYY-MM-DD", field="period") from exc
    period_bounds(start_day, end_day)
    return start_day, end_day


def case_figures(session: Session, start: dt.datetime, end: dt.datetime) -> dict[str, Any] | None:
    """The cases domain's figures, or None while that domain (or its read function) is absent."""
    try:
        # Imported by name: the cases domain may not be installed or finished in this build.
        cases = importlib.import_module("synthgate.cases.service")
    except ImportError:
        return None
    period_counts = getattr(cases, "period_counts", None)
    if period_counts is None:
        return None
    result = period_counts(session, start, end)
    return dict(result) if result is not None else None


def review_figures(
    session: Session, refusals: dict[str, int], start: dt.datetime, end: dt.datetime
) -> dict[str, Any]:
    """Outputs held for human review (refusals ``moderation.held``) and the review queue's own
    figures from ``synthgate.moderation.review.period_counts`` when that read function exists."""
    figures: dict[str, Any] = {"held_for_review": refusals.get("moderation.held", 0)}
    try:
        review = importlib.import_module("synthgate.moderation.review")
    except ImportError:
        review = None
    period_counts = getattr(review, "period_counts", None)
    figures["queue"] = dict(period_counts(session, start, end)) if period_counts is not None else UNAVAILABLE
    return figures


def compute(session: Session, start: dt.date, end: dt.date) -> Figures:
    from synthgate.gateway import service as gateway
    from synthgate.governance import service as governance
    from synthgate.identity import service as identity
    from synthgate.provenance import service as provenance

    lower, upper = period_bounds(start, end)
    refusals = gateway.refusal_counts(session, lower, upper)
    changes = identity.status_change_counts(session, lower, upper)
    sanctions: dict[str, Any] = {"total": sum(changes.get(s, 0) for s in SANCTIONS)}
    sanctions["by_type"] = {s: changes.get(s, 0) for s in SANCTIONS}
    sanctions["lifted"] = changes.get("active", 0)
    return Figures(
        start=start,
        end=end,
        generated_at=utcnow(),
        sections={
            "generations": provenance.generation_counts(session, lower, upper),
            "refusals": {"total": sum(refusals.values()), "by_reason": dict(sorted(refusals.items()))},
            "reviews": review_figures(session, refusals, lower, upper),
            "sanctions": sanctions,
            "cases": case_figures(session, lower, upper),
            "governance": governance.governance_counts(session, lower, upper),
        },
    )


# --- exports ------------------------------------------------------------------------------------


def to_json(figures: Figures) -> bytes:
    return json.dumps(figures.as_dict(), ensure_ascii=False, indent=2).encode()


def to_csv(figures: Figures) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["period_start", "period_end", "section", "figure", "value"])
    for section, figure, value in figures.rows():
        writer.writerow([figures.start.isoformat(), figures.end.isoformat(), section, figure, value])
    # A BOM so spreadsheet programs read the UTF-8 (Chinese reasons, section names) correctly.
    return ("\ufeff" + buffer.getvalue()).encode()


FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/wqy-microhei/wqy-microhei.ttc"),
)


@lru_cache(maxsize=1)
def cjk_font() -> tuple[Path, int]:
    """A TrueType CJK font for the PDF: WenQuanYi Micro Hei (Debian fonts-wqy-microhei), else Noto
    Sans SC from the font package the labels use (CFF outlines; its text extracts less cleanly)."""
    for path in FONT_CANDIDATES:
        if path.is_file():
            return path, 0
    return Path(str(resources.files("pylopdf_fonts_zh_cn").joinpath("NotoSansSC-Regular.otf"))), 0


def to_pdf(figures: Figures, *, title: str = "Transparency report / 透明度报告") -> bytes:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_title(title)
    pdf.set_creator(f"synthgate {__version__}")
    pdf.set_auto_page_break(auto=True, margin=15)
    path, number = cjk_font()
    pdf.add_font("cjk", "", str(path), collection_font_number=number)
    pdf.add_page()
    pdf.set_font("cjk", size=16)
    pdf.cell(0, 10, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=10)
    pdf.cell(
        0,
        6,
        f"Period / 期间: {figures.start.isoformat()} – {figures.end.isoformat()} (UTC)   "
        f"Generated / 生成于: {figures.generated_at.strftime('%Y-%m-%d %H:%M UTC')}",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    for name, values in figures.sections.items():
        pdf.ln(3)
        pdf.set_font("cjk", size=12)
        pdf.cell(0, 8, SECTION_TITLES.get(name, name), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("cjk", size=9)
        if values is None:
            pdf.cell(0, 6, "unavailable / 暂无数据 (source not installed)", new_x="LMARGIN", new_y="NEXT")
            continue
        with pdf.table(
            col_widths=(120, 50), text_align=("LEFT", "RIGHT"), first_row_as_headings=False
        ) as table:
            for key, value in _flatten(values):
                row = table.row()
                row.cell(key)
                row.cell(value)
        chart = _chart_series(figures, name)
        if chart:
            _pdf_bars(pdf, chart)
    return bytes(pdf.output())


def _chart_series(figures: Figures, section: str) -> list[tuple[str, int]]:
    if section == "refusals":
        return figures.series("refusals", "by_reason")
    if section == "generations":
        return figures.series("generations", "by_day")
    return []


def _pdf_bars(pdf: Any, items: list[tuple[str, int]]) -> None:
    """Horizontal bars drawn as PDF vector shapes (no raster, no external renderer)."""
    top = max((v for _, v in items), default=0) or 1
    pdf.ln(2)
    pdf.set_font("cjk", size=7)
    for label, value in items[:40]:
        y = pdf.get_y()
        if y > 270:
            pdf.add_page()
            y = pdf.get_y()
        pdf.set_xy(15, y)
        pdf.cell(55, 4, label[:40])
        pdf.set_fill_color(11, 92, 173)
        pdf.rect(72, y + 0.7, max(0.5, 100 * value / top), 2.6, style="F")
        pdf.set_xy(174, y)
        pdf.cell(20, 4, str(value), align="R")
        pdf.ln(4)


RENDERERS = {"json": (to_json, "application/json"), "csv": (to_csv, "text/csv; charset=utf-8")}


def render(figures: Figures, fmt: str) -> tuple[bytes, str]:
    """The export bytes and their media type for ``fmt`` in json, csv, pdf."""
    if fmt == "pdf":
        return to_pdf(figures), "application/pdf"
    if fmt not in RENDERERS:
        raise InvalidInput("format must be csv, json or pdf", field="format")
    fn, media_type = RENDERERS[fmt]
    return fn(figures), media_type


# --- charts (inline SVG, server-rendered: no script, no CDN, works offline) ---------------------


def bar_chart_svg(items: list[tuple[str, int]], *, title: str, width: int = 640) -> str:
    """A horizontal bar chart as an accessible inline SVG (``role=img`` with a title)."""
    if not items:
        return ""
    bar_h, gap, label_w, value_w = 18, 6, 200, 60
    height = len(items) * (bar_h + gap) + 10
    top = max(v for _, v in items) or 1
    plot_w = width - label_w - value_w
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="t-{_slug(title)}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" class="chart">',
        f'<title id="t-{_slug(title)}">{escape(title)}</title>',
    ]
    for index, (label, value) in enumerate(items):
        y = 5 + index * (bar_h + gap)
        length = max(1.0, plot_w * value / top) if value else 0.0
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end" font-size="12">'
            f"{escape(label[:32])}</text>"
            f'<rect x="{label_w}" y="{y}" width="{length:.1f}" height="{bar_h}" fill="#0b5cad">'
            f"<title>{escape(label)}: {value}</title></rect>"
            f'<text x="{label_w + length + 6:.1f}" y="{y + 13}" font-size="12">{value}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower())[:40]


def charts(figures: Figures) -> dict[str, str]:
    """The dashboard's charts, by section."""
    out = {
        "generations": bar_chart_svg(figures.series("generations", "by_day"), title="Generations per day"),
        "refusals": bar_chart_svg(figures.series("refusals", "by_reason"), title="Refusals by reason"),
        "sanctions": bar_chart_svg(figures.series("sanctions", "by_type"), title="Account sanctions by type"),
    }
    return {k: v for k, v in out.items() if v}
