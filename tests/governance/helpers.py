"""Small builders shared by the governance tests: a filed algorithm, a passed assessment."""

from __future__ import annotations

import datetime as dt
import io

from PIL import Image
from sqlalchemy.orm import Session

from synthgate.config import Settings
from synthgate.gateway.sdk import Gateway
from synthgate.governance import service as governance
from synthgate.governance.models import Algorithm, AlgorithmVersion, Assessment


def pdf_bytes(text: str = "assessment report") -> bytes:
    """A real one-page PDF (fpdf2), as an assessment report would be."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text=text)
    return bytes(pdf.output())


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


ITEMS = {
    "provider_name": "示例科技有限公司",
    "service_form": "API and app",
    "application_domain": "image generation",
    "algorithm_type": "generation_synthesis",
    "self_assessment": "Self-assessment report summary: risks, controls, results.",
    "public_content": "Principle: diffusion model. Mechanism: text to image. Purpose: creative tools.",
}


def draft_algorithm(session: Session, name: str = "图像生成算法", **overrides: object) -> Algorithm:
    items = {**ITEMS, **overrides}
    return governance.create_algorithm(session, actor="operator:compliance", name=name, **items)  # type: ignore[arg-type]


def filed_algorithm(
    session: Session, settings: Settings, number: str = "网信算备110108000000001230001", **overrides: object
) -> Algorithm:
    algorithm = draft_algorithm(session, **overrides)
    governance.add_labeling_material(
        session,
        settings,
        algorithm,
        title="Labeling method",
        description="Explicit labels 人工智能生成 at the end of text; AIGC metadata in every file.",
        actor="operator:compliance",
    )
    governance.record_filing(
        session,
        algorithm,
        filing_number=number,
        filing_link=f"https://beian.example.cn/notice/{number}",
        actor="operator:compliance",
    )
    return algorithm


def passed_assessment(
    session: Session,
    settings: Settings,
    *,
    version: AlgorithmVersion | None = None,
    function_id: str | None = None,
    valid_until: dt.datetime | None = None,
) -> Assessment:
    assessment = governance.create_assessment(
        session,
        kind="security",
        title="Security assessment",
        actor="operator:compliance",
        algorithm_version_id=version.id if version else None,
        function_id=function_id,
        scope="biometric editing",
    )
    governance.add_evidence(
        session,
        settings,
        owner_type="assessment",
        owner_id=assessment.id,
        filename="report.pdf",
        data=pdf_bytes(),
        actor="operator:compliance",
    )
    governance.sign_off(
        session,
        assessment,
        result="passed",
        conclusion="No unacceptable risk found.",
        signed_on=dt.date(2026, 11, 20),
        actor="operator:compliance",
        valid_until=valid_until,
    )
    return assessment


def clear_for_biometric(gateway: Gateway, slug: str, models: tuple[str, ...] = ("default",)) -> str:
    """Everything DSP-15 asks before a service may edit faces or voices: a filed algorithm linked to
    the service, a biometric model version (a request naming no model uses the newest version) and a
    passed security assessment of it. For other domains' tests once ``governance_gate`` is a default
    stage. Returns the version id."""
    with gateway.db.session() as session:
        algorithm = filed_algorithm(session, gateway.settings, number=f"网信算备-{slug}")
        governance.link_service(session, governance.get_service(session, slug), algorithm, actor="test")
        version = governance.add_version(
            session, algorithm, version="1.0", models=list(models), biometric=True, actor="test"
        )
        passed_assessment(session, gateway.settings, version=version)
        return version.id
