"""Governance pages: algorithm filings (DSP-19, ALG-24), versions, change and cancellation filings,
assessments with evidence and sign-off (DSP-15, DSP-20), DSP-7 management records, labeling
materials (LM-12), service functions and emergency suspensions.

Thin: every write is one call into ``synthgate.governance.service``, which audits it in the same
transaction. A domain error becomes a console error page with its 4xx status.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from synthgate.errors import InvalidInput, NotFound
from synthgate.governance import evidence as evidence_files
from synthgate.governance import service as governance
from synthgate.governance.models import AlgorithmVersion, LabelingMaterial, ServiceFunction
from synthgate.governance.workdays import WorkCalendar, calendar_for
from synthgate.web.console.common import (
    PREFIX,
    Viewer,
    action,
    get_gateway,
    html_errors,
    page,
    parse_utc,
    redirect,
    render,
)

router = APIRouter(prefix=PREFIX + "/governance", include_in_schema=False)
BASE = PREFIX + "/governance"


def _calendar(request: Request) -> WorkCalendar:
    return calendar_for(get_gateway(request).settings)


def _date(value: str, field: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError as exc:
        raise InvalidInput(f"{field}: not a date (YYYY-MM-DD)", field=field) from exc


# --- overview ---------------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def overview(request: Request, viewer: Viewer = Depends(page("governance.read"))) -> HTMLResponse:
    with get_gateway(request).db.session() as session:
        services = governance.list_services(session)
        context: dict[str, Any] = {
            "algorithms": governance.list_algorithms(session),
            "reminders": governance.due_filings(session, calendar=_calendar(request)),
            "suspensions": governance.list_suspensions(session, active_only=True),
            "functions": governance.list_functions(session),
            "services": services,
            "services_by_id": {s.id: s for s in services},
            "missing_records": governance.missing_record_types(session),
            "record_types": governance.RECORD_TYPES,
            "algorithm_types": governance.ALGORITHM_TYPES,
        }
    return render(request, "console/governance.html", viewer, context)


@router.post("/algorithms")
def create_algorithm(
    request: Request,
    name: str = Form(""),
    provider_name: str = Form(""),
    service_form: str = Form(""),
    application_domain: str = Form(""),
    algorithm_type: str = Form(""),
    self_assessment: str = Form(""),
    public_content: str = Form(""),
    launched_at: str = Form(""),
    viewer: Viewer = Depends(action("governance.write")),
) -> Response:
    with get_gateway(request).db.session() as session, html_errors(viewer):
        algorithm = governance.create_algorithm(
            session,
            actor=viewer.actor,
            name=name,
            provider_name=provider_name,
            service_form=service_form,
            application_domain=application_domain,
            algorithm_type=algorithm_type,
            self_assessment=self_assessment,
            public_content=public_content,
            launched_at=parse_utc(launched_at, "launched_at"),
            calendar=_calendar(request),
        )
        algorithm_id = algorithm.id
    return redirect(request, f"{BASE}/algorithms/{algorithm_id}", ok="Algorithm created (draft).")


# --- one algorithm ----------------------------------------------------------------------------------


@router.get("/algorithms/{algorithm_id}", response_class=HTMLResponse)
def show_algorithm(
    algorithm_id: str, request: Request, viewer: Viewer = Depends(page("governance.read"))
) -> HTMLResponse:
    with get_gateway(request).db.session() as session:
        with html_errors(viewer):
            algorithm = governance.get_algorithm(session, algorithm_id)
        versions = governance.list_versions(session, algorithm)
        materials = governance.list_materials(session, algorithm)
        services = governance.list_services(session)
        context = {
            "algorithm": algorithm,
            "versions": versions,
            "obligations": governance.list_obligations(session, algorithm=algorithm),
            "materials": materials,
            "material_evidence": {
                m.id: governance.evidence_for(session, "material", m.id) for m in materials
            },
            "evidence": governance.evidence_for(session, "algorithm", algorithm.id),
            "records": governance.list_records(session, algorithm_id=algorithm.id),
            "linked": [s for s in services if s.algorithm_id == algorithm.id],
            "services": services,
            "items": governance.ALG24_ITEMS,
            "algorithm_types": governance.ALGORITHM_TYPES,
            "record_types": governance.RECORD_TYPES,
        }
    return render(request, "console/governance_algorithm.html", viewer, context)


def _algorithm_action(request: Request, viewer: Viewer, algorithm_id: str, work: Any, ok: str) -> Response:
    with get_gateway(request).db.session() as session, html_errors(viewer):
        algorithm = governance.get_algorithm(session, algorithm_id)
        work(session, algorithm)
    return redirect(request, f"{BASE}/algorithms/{algorithm_id}", ok=ok)


@router.post("/algorithms/{algorithm_id}/items")
def edit_items(
    algorithm_id: str,
    request: Request,
    name: str = Form(""),
    provider_name: str = Form(""),
    service_form: str = Form(""),
    application_domain: str = Form(""),
    algorithm_type: str = Form(""),
    self_assessment: str = Form(""),
    public_content: str = Form(""),
    viewer: Viewer = Depends(action("governance.write")),
) -> Response:
    items = {
        "name": name,
        "provider_name": provider_name,
        "service_form": service_form,
        "application_domain": application_domain,
        "algorithm_type": algorithm_type,
        "self_assessment": self_assessment,
        "public_content": public_content,
    }
    return _algorithm_action(
        request,
        viewer,
        algorithm_id,
        lambda session, algorithm: governance.update_algorithm(
            session, algorithm, items, actor=viewer.actor, calendar=_calendar(request)
        ),
        "Filing items saved.",
    )


@router.post("/algorithms/{algorithm_id}/launch")
def record_launch(
    algorithm_id: str,
    request: Request,
    launched_at: str = Form(""),
    viewer: Viewer = Depends(action("governance.write")),
) -> Response:
    def work(session: Any, algorithm: Any) -> None:
        moment = parse_utc(launched_at, "launched_at")
        if moment is None:
            raise InvalidInput("launched_at: give the launch time", field="launched_at")
        governance.record_launch(
            session, algorithm, launched_at=moment, actor=viewer.actor, calendar=_calendar(request)
        )

    return _algorithm_action(
        request, viewer, algorithm_id, work, "Launch recorded; the filing is due within 10 working days."
    )


@router.post("/algorithms/{algorithm_id}/file")
def record_filing(
    algorithm_id: str,
    request: Request,
    filing_number: str = Form(""),
    filing_link: str = Form(""),
    viewer: Viewer = Depends(action("governance.write")),
) -> Response:
    return _algorithm_action(
        request,
        viewer,
        algorithm_id,
        lambda session, algorithm: governance.record_filing(
            session, algorithm, filing_number=filing_number, filing_link=filing_link, actor=viewer.actor
        ),
        "Filing recorded; linked services now show its number and link.",
    )


@router.post("/algorithms/{algorithm_id}/versions")
def add_version(
    algorithm_id: str,
    request: Request,
    version: str = Form(""),
    models: str = Form(""),
    biometric: str = Form(""),
    description: str = Form(""),
    viewer: Viewer = Depends(action("governance.write")),
) -> Response:
    names = [m.strip() for m in models.replace(",", "\n").splitlines() if m.strip()]
    return _algorithm_action(
        request,
        viewer,
        algorithm_id,
        lambda session, algorithm: governance.add_version(
            session,
            algorithm,
            version=version,
            models=names,
            biometric=biometric == "on",
            description=description,
            actor=viewer.actor,
            calendar=_calendar(request),
        ),
        f"Version {version.strip()} added.",
    )


@router.post("/algorithms/{algorithm_id}/link")
def link_service(
    algorithm_id: str,
    request: Request,
    service: str = Form(""),
    unlink: str = Form(""),
    viewer: Viewer = Depends(action("governance.write")),
) -> Response:
    def work(session: Any, algorithm: Any) -> None:
        target = governance.get_service(session, service.strip())
        governance.link_service(session, target, None if unlink else algorithm, actor=viewer.actor)

    return _algorithm_action(request, viewer, algorithm_id, work, "Service link saved.")


@router.post("/algorithms/{algorithm_id}/changes")
def record_change(
    algorithm_id: str,
    request: Request,
    description: str = Form(""),
    occurred_at: str = Form(""),
    viewer: Viewer = Depends(action("governance.write")),
) -> Response:
    return _algorithm_action(
        request,
        viewer,
        algorithm_id,
        lambda session, algorithm: governance.record_change(
            session,
            algorithm,
            description=description,
            actor=viewer.actor,
            occurred_at=parse_utc(occurred_at, "occurred_at"),
            calendar=_calendar(request),
        ),
        "Change recorded; its filing is due within 10 working days.",
    )


@router.post("/algorithms/{algorithm_id}/stop")
def stop_algorithm(
    algorithm_id: str,
    request: Request,
    reason: str = Form(""),
    occurred_at: str = Form(""),
    viewer: Viewer = Depends(action("governance.write")),
) -> Response:
    return _algorithm_action(
        request,
        viewer,
        algorithm_id,
        lambda session, algorithm: governance.stop_algorithm(
            session,
            algorithm,
            reason=reason,
            actor=viewer.actor,
            occurred_at=parse_utc(occurred_at, "occurred_at"),
        ),
        "Service stop recorded; the cancellation is due within 20 working days.",
    )


@router.post("/algorithms/{algorithm_id}/materials")
def add_material(
    algorithm_id: str,
    request: Request,
    title: str = Form(""),
    description: str = Form(""),
    assessment_id: str = Form(""),
    viewer: Viewer = Depends(action("governance.write")),
) -> Response:
    settings = get_gateway(request).settings
    return _algorithm_action(
        request,
        viewer,
        algorithm_id,
        lambda session, algorithm: governance.add_labeling_material(
            session,
            settings,
            algorithm,
            title=title,
            description=description,
            actor=viewer.actor,
            assessment_id=assessment_id.strip() or None,
        ),
        "Labeling material attached.",
    )


@router.post("/obligations/{obligation_id}/filed")
def obligation_filed(
    obligation_id: str,
    request: Request,
    reference: str = Form(""),
    viewer: Viewer = Depends(action("governance.write")),
) -> Response:
    with get_gateway(request).db.session() as session, html_errors(viewer):
        obligation = governance.complete_obligation(
            session, obligation_id, reference=reference, actor=viewer.actor
        )
        algorithm_id = obligation.algorithm_id
    return redirect(request, f"{BASE}/algorithms/{algorithm_id}", ok="Filing recorded.")


# --- assessments ------------------------------------------------------------------------------------


def _targets(session: Any) -> dict[str, list[Any]]:
    algorithms = {a.id: a for a in governance.list_algorithms(session)}
    versions = [
        (v, algorithms[v.algorithm_id])
        for a in algorithms.values()
        for v in governance.list_versions(session, a)
    ]
    services = {s.id: s for s in governance.list_services(session)}
    functions = [(f, services[f.service_id]) for f in governance.list_functions(session)]
    return {"versions": versions, "functions": functions}


@router.get("/assessments", response_class=HTMLResponse)
def list_assessments(request: Request, viewer: Viewer = Depends(page("governance.read"))) -> HTMLResponse:
    with get_gateway(request).db.session() as session:
        context = {
            "assessments": governance.list_assessments(session),
            "targets": _targets(session),
            "kinds": governance.ASSESSMENT_KINDS,
        }
    return render(request, "console/governance_assessments.html", viewer, context)


@router.post("/assessments")
def create_assessment(
    request: Request,
    kind: str = Form(""),
    title: str = Form(""),
    target: str = Form(""),
    scope: str = Form(""),
    viewer: Viewer = Depends(action("governance.write")),
) -> Response:
    target_type, _, target_id = target.partition(":")
    with get_gateway(request).db.session() as session, html_errors(viewer):
        assessment = governance.create_assessment(
            session,
            kind=kind,
            title=title,
            actor=viewer.actor,
            algorithm_version_id=target_id if target_type == "version" else None,
            function_id=target_id if target_type == "function" else None,
            scope=scope,
        )
        assessment_id = assessment.id
    return redirect(
        request, f"{BASE}/assessments/{assessment_id}", ok="Assessment opened; attach its evidence."
    )


@router.get("/assessments/{assessment_id}", response_class=HTMLResponse)
def show_assessment(
    assessment_id: str, request: Request, viewer: Viewer = Depends(page("governance.read"))
) -> HTMLResponse:
    with get_gateway(request).db.session() as session:
        with html_errors(viewer):
            assessment = governance.get_assessment(session, assessment_id)
        version = (
            session.get(AlgorithmVersion, assessment.algorithm_version_id)
            if assessment.algorithm_version_id
            else None
        )
        function = session.get(ServiceFunction, assessment.function_id) if assessment.function_id else None
        context = {
            "assessment": assessment,
            "version": version,
            "function": function,
            "evidence": governance.evidence_for(session, "assessment", assessment.id),
            "today": dt.date.today().isoformat(),
        }
    return render(request, "console/governance_assessment.html", viewer, context)


@router.post("/assessments/{assessment_id}/sign-off")
def sign_off(
    assessment_id: str,
    request: Request,
    result: str = Form(""),
    conclusion: str = Form(""),
    signed_on: str = Form(""),
    valid_until: str = Form(""),
    viewer: Viewer = Depends(action("governance.write")),
) -> Response:
    with get_gateway(request).db.session() as session, html_errors(viewer):
        assessment = governance.get_assessment(session, assessment_id)
        governance.sign_off(
            session,
            assessment,
            result=result,
            conclusion=conclusion,
            signed_on=_date(signed_on, "signed_on"),
            actor=viewer.actor,
            valid_until=parse_utc(valid_until, "valid_until"),
        )
    return redirect(request, f"{BASE}/assessments/{assessment_id}", ok=f"Signed off: {result}.")


# --- DSP-7 management records ---------------------------------------------------------------------


@router.get("/records", response_class=HTMLResponse)
def list_records(request: Request, viewer: Viewer = Depends(page("governance.read"))) -> HTMLResponse:
    with get_gateway(request).db.session() as session:
        context = {
            "records": governance.list_records(session),
            "record_types": governance.RECORD_TYPES,
            "missing": governance.missing_record_types(session),
            "algorithms": governance.list_algorithms(session),
        }
    return render(request, "console/governance_records.html", viewer, context)


@router.post("/records")
def create_record(
    request: Request,
    record_type: str = Form(""),
    title: str = Form(""),
    owner: str = Form(""),
    effective_on: str = Form(""),
    body: str = Form(""),
    algorithm_id: str = Form(""),
    viewer: Viewer = Depends(action("governance.write")),
) -> Response:
    with get_gateway(request).db.session() as session, html_errors(viewer):
        record = governance.create_record(
            session,
            record_type=record_type,
            title=title,
            owner=owner,
            effective_on=_date(effective_on, "effective_on"),
            actor=viewer.actor,
            body=body,
            algorithm_id=algorithm_id.strip() or None,
        )
        record_id = record.id
    return redirect(request, f"{BASE}/records/{record_id}", ok="Record saved; attach its evidence.")


@router.get("/records/{record_id}", response_class=HTMLResponse)
def show_record(
    record_id: str, request: Request, viewer: Viewer = Depends(page("governance.read"))
) -> HTMLResponse:
    with get_gateway(request).db.session() as session:
        with html_errors(viewer):
            record = governance.get_record(session, record_id)
        context = {
            "record": record,
            "record_types": governance.RECORD_TYPES,
            "evidence": governance.evidence_for(session, "record", record.id),
        }
    return render(request, "console/governance_record.html", viewer, context)


# --- evidence -------------------------------------------------------------------------------------

_OWNER_PAGES = {
    "assessment": "/assessments/{id}",
    "record": "/records/{id}",
    "algorithm": "/algorithms/{id}",
}


@router.post("/evidence")
async def upload_evidence(
    request: Request,
    owner_type: str = Form(""),
    owner_id: str = Form(""),
    file: UploadFile | None = File(None),
    viewer: Viewer = Depends(action("governance.write")),
) -> Response:
    gateway = get_gateway(request)
    if file is None:
        with html_errors(viewer):
            raise InvalidInput("choose a file to upload", field="file")
    assert file is not None
    data = await file.read(gateway.settings.evidence_max_bytes + 1)
    filename = file.filename or "evidence"

    def store() -> str:
        with gateway.db.session() as session, html_errors(viewer):
            governance.add_evidence(
                session,
                gateway.settings,
                owner_type=owner_type,
                owner_id=owner_id,
                filename=filename,
                data=data,
                actor=viewer.actor,
            )
            if owner_type == "material":
                material = session.get(LabelingMaterial, owner_id)
                assert material is not None
                return f"/algorithms/{material.algorithm_id}"
            return _OWNER_PAGES[owner_type].format(id=owner_id)

    back = await run_in_threadpool(store)
    return redirect(request, BASE + back, ok="Evidence stored.")


@router.get("/evidence/{evidence_id}")
def download_evidence(
    evidence_id: str, request: Request, viewer: Viewer = Depends(page("governance.read"))
) -> Response:
    gateway = get_gateway(request)
    with gateway.db.session() as session, html_errors(viewer):
        try:
            row, data = governance.read_evidence(session, gateway.settings, evidence_id)
        except (FileNotFoundError, ValueError) as exc:
            raise NotFound(str(exc)) from exc
        filename = row.filename
        kind = row.kind
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return Response(
        data,
        media_type=evidence_files.KIND_TYPES[kind],
        headers={
            # Always a download: evidence is never rendered inside the console's origin.
            "Content-Disposition": f'attachment; filename="{ascii_name}"; '
            f"filename*=UTF-8''{quote(filename)}",
            "X-Content-Type-Options": "nosniff",
        },
    )


# --- functions and suspensions --------------------------------------------------------------------


@router.post("/functions")
def declare_function(
    request: Request,
    service: str = Form(""),
    operation: str = Form(""),
    title: str = Form(""),
    public_facing: str = Form(""),
    viewer: Viewer = Depends(action("governance.write")),
) -> Response:
    with get_gateway(request).db.session() as session, html_errors(viewer):
        target = governance.get_service(session, service.strip())
        governance.declare_function(
            session,
            target,
            operation=operation,
            title=title,
            public_facing=public_facing == "on",
            actor=viewer.actor,
        )
    return redirect(request, BASE + "#functions", ok=f"Function {operation.strip()} declared.")


@router.post("/suspensions")
def suspend(
    request: Request,
    service: str = Form(""),
    feature: str = Form(""),
    reason: str = Form(""),
    until: str = Form(""),
    case_ref: str = Form(""),
    viewer: Viewer = Depends(action("governance.suspend")),
) -> Response:
    with get_gateway(request).db.session() as session, html_errors(viewer):
        target = governance.get_service(session, service.strip())
        governance.suspend(
            session,
            target,
            reason=reason,
            actor=viewer.actor,
            feature=feature.strip() or None,
            until=parse_utc(until, "until"),
            case_ref=case_ref,
        )
    return redirect(request, BASE + "#suspensions", ok="Suspended; every worker refuses it within a second.")


@router.post("/suspensions/{suspension_id}/lift")
def lift(
    suspension_id: str, request: Request, viewer: Viewer = Depends(action("governance.suspend"))
) -> Response:
    with get_gateway(request).db.session() as session, html_errors(viewer):
        governance.lift_suspension(session, suspension_id, actor=viewer.actor)
    return redirect(request, BASE + "#suspensions", ok="Suspension lifted.")
