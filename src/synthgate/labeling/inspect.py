"""Read everything back from a file, as a distribution platform must (LM-6).

The report lists the metadata labels (GB-6.1: more than one is non-conformant), the binding check
of ``ReservedCode1`` and the tier: ``generated`` (the metadata says so), ``possibly`` (no
metadata, but the uploader declared AI content), ``suspected`` (neither, but an explicit label or
another trace was detected) or ``none``. Traces come from the ``trace_detectors`` registry (GB-5.1
wording in text, IPTC source types, OCR of visible labels with the packaged RapidOCR models); the
C2PA manifest is read and validated against the configured trust anchors, and one that declares
AI generation is a trace too. Watermark detection plugs in the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from synthgate.labeling.implicit.base import FoundLabel, codec_for
from synthgate.labeling.implicit.binding import Verifiers, check_binding, digest_matches, parse_binding
from synthgate.media.errors import MediaError
from synthgate.media.limits import DEFAULT_LIMITS, MediaLimits
from synthgate.media.sniff import IMAGE_KINDS, VIDEO_KINDS
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


@trace_detectors.register("ocr_explicit_label")
class OcrExplicitLabel:
    """GB-5.2 / GB-5.4: a visible label (AI element + generation element) read by OCR.

    Reads the first frame of an image or video (a conformant video label is on screen from the
    first frame) with the RapidOCR wrapper the moderation detectors use: one model per process.
    Pixel and duration limits are checked before anything is decoded. Costly (a model run of a
    fraction of a second): runs when a caller asks for a ``thorough`` inspection.
    """

    costly = True

    def __init__(self, limits: MediaLimits = DEFAULT_LIMITS) -> None:
        self.limits = limits

    def detect(self, data: bytes, container: str) -> list[Trace]:
        if container not in IMAGE_KINDS and container not in VIDEO_KINDS:
            return []
        from synthgate.labeling.text import is_conformant_label
        from synthgate.media import MediaItem
        from synthgate.moderation.detectors_media import OcrDetector, Undecodable, decode_frames

        try:
            frames = decode_frames(MediaItem.from_bytes(data, limits=self.limits), self.limits)
        except Undecodable:
            return []
        if not frames:
            return []
        lines = OcrDetector().read(frames[0])
        # OCR may split a label over two boxes or join it with nearby text: try lines, then all.
        for candidate in [*lines, "".join(lines)]:
            if is_conformant_label(candidate):
                where = "first frame of the video" if container in VIDEO_KINDS else "image"
                return [
                    Trace(
                        "ocr_explicit_label",
                        "explicit_label",
                        f"visible label read in the {where}: {candidate.strip()[:80]}",
                    )
                ]
        return []


def c2pa_trace(manifest: dict[str, Any]) -> Trace | None:
    """A C2PA manifest that declares AI generation or AI editing is a trace (LM-6 "suspected")."""
    if not manifest.get("present") or not manifest.get("ai_generated"):
        return None
    sources = sorted(
        {str(a.get("digitalSourceType", "")).rsplit("/", 1)[-1] for a in manifest.get("actions", [])} - {""}
    )
    state = manifest.get("state") or "unknown"
    return Trace("c2pa", "c2pa", f"C2PA manifest declares {', '.join(sources)} (validation: {state})")


@dataclass(slots=True)
class InspectReport:
    container: str
    labels: list[FoundLabel] = field(default_factory=list)
    binding: dict[str, Any] = field(default_factory=dict)
    traces: list[Trace] = field(default_factory=list)
    tier: Tier = "none"
    reasons: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    c2pa: dict[str, Any] = field(default_factory=lambda: {"present": False})

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
            "c2pa": self.c2pa,
            "traces": [{"detector": t.detector, "kind": t.kind, "detail": t.detail} for t in self.traces],
            "findings": self.findings,
        }


def _binding(
    found: FoundLabel, data: bytes, verifier: Verifiers | None, limits: MediaLimits
) -> dict[str, Any]:
    label = found.label
    parsed = parse_binding(label) if label is not None else None
    if label is None or parsed is None:
        status = "unsigned" if label is None or not label.ReservedCode1 else "forged"
        if verifier is not None and label is not None:
            status = check_binding(label, data, verifier, limits=limits)
        return {"status": status}
    result: dict[str, Any] = {"scheme": parsed[0]}
    try:
        checked = check_binding(label, data, verifier, limits=limits) if verifier is not None else None
        if checked is None or checked == "not_verified":
            # No key for this scheme here: whether the content is still what was labeled is
            # still worth saying, though nobody vouched for the label.
            result.update(status="not_verified", digest_matches=digest_matches(label, data, limits))
        else:
            result["status"] = checked
        return result
    except MediaError as exc:
        return {**result, "status": "error", "error": exc.message}


def _c2pa(data: bytes, container: str, trust_anchors: bytes | None) -> dict[str, Any]:
    from synthgate.errors import SynthgateError
    from synthgate.labeling import c2pa

    if container not in c2pa.MIME_TYPES:
        return {"present": False, "supported": False}
    try:
        return c2pa.read(data, container, trust_anchors).to_dict()
    except SynthgateError as exc:  # c2pa-python missing: say so, the rest of the report stands
        return {"present": False, "error": exc.message}


def inspect(
    data: bytes,
    *,
    verifier: Verifiers | None = None,
    declared: bool = False,
    limits: MediaLimits = DEFAULT_LIMITS,
    trust_anchors: bytes | None = None,
    detectors: list[str] | None = None,
    thorough: bool = False,
) -> InspectReport:
    """Everything a platform needs to decide and show the LM-6 notice for ``data``.

    ``thorough`` also runs the costly trace detectors (OCR of visible labels); the CLI, the public
    endpoint and propagation ask for it, quick look-ups (tracing a file to its record) do not.

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
    report.c2pa = _c2pa(data, container, trust_anchors)
    if report.c2pa.get("present") and report.c2pa.get("state") == "Invalid":
        report.findings.append(
            "C2PA: the manifest does not validate ("
            + ", ".join(report.c2pa.get("failures") or [report.c2pa.get("error") or "invalid"])
            + ")"
        )
    trace = c2pa_trace(report.c2pa)
    if trace is not None:
        report.traces.append(trace)
    for name in detectors if detectors is not None else trace_detectors.names():
        try:
            factory = trace_detectors.factory(name)
            if getattr(factory, "costly", False) and not thorough and detectors is None:
                continue
            detector = factory(limits) if factory is OcrExplicitLabel else factory()
            report.traces += detector.detect(data, container)
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
