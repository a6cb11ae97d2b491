"""Read everything back from a file, as a distribution platform must (LM-6).

The report lists the metadata labels (GB-6.1: more than one is non-conformant), the binding check
of ``ReservedCode1`` and the tier: ``generated`` (the metadata says so), ``possibly`` (no
metadata, but the uploader declared AI content), ``suspected`` (neither, but an explicit label or
another trace was detected) or ``none``. Traces come from the ``trace_detectors`` registry, where
OCR of explicit labels, watermark detection and C2PA validation plug in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from synthgate.labeling.implicit.base import FoundLabel, codec_for
from synthgate.labeling.implicit.binding import Verifier, check_binding, digest_matches, parse_binding
from synthgate.media.errors import MediaError
from synthgate.media.limits import DEFAULT_LIMITS, MediaLimits
from synthgate.registry import Registry

Tier = Literal["generated", "possibly", "suspected", "none"]
_TIER_OF_LABEL: dict[str, Tier] = {"1": "generated", "2": "possibly", "3": "suspected"}


@dataclass(frozen=True, slots=True)
class Trace:
    """Evidence of AI generation other than a metadata label."""

    detector: str
    kind: str
    """``explicit_label``, ``watermark``, ``c2pa``, ``provenance_metadata`` ..."""
    detail: str


class TraceDetector(Protocol):
    def detect(self, data: bytes, container: str) -> list[Trace]: ...


trace_detectors: Registry[TraceDetector] = Registry("trace_detectors")


@trace_detectors.register("text_explicit_label")
class TextExplicitLabel:
    """GB-5.1 wording (AI element + generation element) in a text file."""

    def detect(self, data: bytes, container: str) -> list[Trace]:
        if container not in ("markdown", "html"):
            return []
        from synthgate.labeling.text import is_conformant_label

        text = data.decode("utf-8", errors="ignore")
        for line in text.splitlines():
            if len(line) <= 200 and is_conformant_label(line):
                return [
                    Trace("text_explicit_label", "explicit_label", f"explicit label text: {line.strip()}")
                ]
        return []


@trace_detectors.register("digital_source_type")
class DigitalSourceType:
    """IPTC / C2PA ``trainedAlgorithmicMedia`` vocabulary written by other generators."""

    TERMS = (b"trainedAlgorithmicMedia", b"compositeWithTrainedAlgorithmicMedia", b"algorithmicMedia")

    def detect(self, data: bytes, container: str) -> list[Trace]:
        head = data[: 4 * 1024 * 1024]
        for term in self.TERMS:
            if term in head:
                return [
                    Trace(
                        "digital_source_type",
                        "provenance_metadata",
                        f"IPTC digital source type {term.decode()}",
                    )
                ]
        return []


@dataclass(slots=True)
class InspectReport:
    container: str
    labels: list[FoundLabel] = field(default_factory=list)
    binding: dict[str, Any] = field(default_factory=dict)
    traces: list[Trace] = field(default_factory=list)
    tier: Tier = "none"
    reasons: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)

    @property
    def multiple_labels(self) -> bool:
        return len(self.labels) > 1

    @property
    def conformant(self) -> bool:
        """GB-E / GB-6.1: exactly one label, and it is a valid AIGC object."""
        return len(self.labels) == 1 and self.labels[0].label is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "container": self.container,
            "tier": self.tier,
            "reasons": self.reasons,
            "labels": [found.to_dict() for found in self.labels],
            "multiple_labels": self.multiple_labels,
            "conformant": self.conformant,
            "binding": self.binding,
            "traces": [{"detector": t.detector, "kind": t.kind, "detail": t.detail} for t in self.traces],
            "findings": self.findings,
        }


def _binding(
    found: FoundLabel, data: bytes, verifier: Verifier | None, limits: MediaLimits
) -> dict[str, Any]:
    label = found.label
    if label is None or parse_binding(label) is None:
        status = "unsigned" if label is None or not label.ReservedCode1 else "forged"
        if verifier is not None and label is not None:
            status = check_binding(label, data, verifier, limits=limits)
        return {"status": status}
    try:
        if verifier is not None:
            return {"status": check_binding(label, data, verifier, limits=limits)}
        return {"status": "not_verified", "digest_matches": digest_matches(label, data, limits)}
    except MediaError as exc:
        return {"status": "error", "error": exc.message}


def inspect(
    data: bytes,
    *,
    verifier: Verifier | None = None,
    declared: bool = False,
    limits: MediaLimits = DEFAULT_LIMITS,
) -> InspectReport:
    """Everything a platform needs to decide and show the LM-6 notice for ``data``.

    Unsupported or corrupt files raise :class:`synthgate.media.MediaError` (a clear 4xx).
    """
    limits.check_bytes(data)
    container, codec = codec_for(data)
    report = InspectReport(container=container, labels=codec.read(data))
    if report.multiple_labels:
        report.findings.append(
            f"GB-6.1: the file carries {len(report.labels)} metadata labels; exactly one is allowed "
            "(writing a label fixes this)"
        )
    for found in report.labels:
        if found.label is None:
            report.findings.append(
                f"GB-E: the label in {found.where} is not a valid AIGC object: {found.error}"
            )
    valid = [f for f in report.labels if f.label is not None]
    if valid:
        report.binding = _binding(valid[0], data, verifier, limits)
    for name in trace_detectors.names():
        try:
            report.traces += trace_detectors.create(name).detect(data, container)
        except MediaError as exc:
            report.findings.append(f"trace detector {name} could not read the file: {exc.message}")
    if valid:
        assert valid[0].label is not None
        report.tier = _TIER_OF_LABEL[valid[0].label.Label]
        report.reasons.append(f"metadata label in {valid[0].where} says Label={valid[0].label.Label}")
    elif declared:
        report.tier = "possibly"
        report.reasons.append("no metadata label, but the uploader declared the content AI-generated")
    elif report.traces:
        report.tier = "suspected"
        report.reasons += [f"{t.kind}: {t.detail}" for t in report.traces]
    else:
        report.reasons.append("no metadata label, no declaration and no trace of generation found")
    return report
