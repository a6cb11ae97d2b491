"""Disposal (DSP-10, GAI-14): a decided complaint takes the generation down, banks its hashes so the
same picture is refused when generated or uploaded again, sanctions the account; an appeal
decided by a second reviewer reverts all of it (DSP-12)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from synthgate.audit.models import AuditEvent
from synthgate.cases import service as cases
from synthgate.cases.models import Case
from synthgate.errors import Conflict, Forbidden, NotFound, Refused
from synthgate.gateway.sdk import Gateway
from synthgate.identity import service as identity
from synthgate.identity.models import Account
from synthgate.provenance import service as provenance
from tests.cases.conftest import complain_api, generate_image, picture
from tests.conftest import ServiceWithKey


def _case_id(gateway: Gateway) -> str:
    with gateway.db.session() as session:
        return session.scalars(select(Case.id)).one()


def _decide(gateway: Gateway, case_id: str, **extra: object) -> cases.Outcome:
    data = cases.DecisionInput(
        outcome="violation",
        ground="DSP-11; platform rules §4 (false information)",
        category="A.1.7",
        facts="The picture shows a flood that did not happen, posted as news.",
        **extra,  # type: ignore[arg-type]
    )
    with gateway.db.session() as session:
        return cases.decide(session, gateway.keys, gateway.settings, case_id, data, actor="operator:rita")


def _events(gateway: Gateway, prefix: str) -> list[AuditEvent]:
    with gateway.db.session() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.event_type.startswith(prefix))).all()
        session.expunge_all()
        return list(rows)


def test_dsp10_takedown_blocks_the_same_picture_and_an_overturned_appeal_restores_it(
    client: TestClient, gateway: Gateway, svc: ServiceWithKey
) -> None:
    image = picture(11)
    produce_id, delivered = generate_image(gateway, "alice", image)

    # The public uploads the file they found: tracing links the generation and the account.
    filed = complain_api(
        client,
        gateway,
        data=__import__("base64").b64encode(delivered).decode(),
        media_type="image/png",
        contact="witness@example.org",
    )
    assert filed.status_code == 201, filed.text
    case_id = _case_id(gateway)
    with gateway.db.session() as session:
        case = cases.get_case(session, case_id)
        assert case.produce_id == produce_id
        alice = session.scalars(select(Account).where(Account.external_id == "alice")).one()
        assert case.account_id == alice.id
        assert any("sha256" in link["matchers"] for link in case.links)

    outcome = _decide(
        gateway, case_id, takedown=True, sanction=cases.SanctionInput("restricted", ["generate"])
    )
    with gateway.db.session() as session:
        generation = provenance.get_generation(session, produce_id)
        assert generation.taken_down_at is not None and generation.taken_down_case == case_id
        account = session.get(Account, alice.id)
        assert account is not None and identity.effective_status(account) == "restricted"
    assert len(outcome.notices) == 2  # the complainant (e-mail given) and the affected user

    # The same picture, generated again by another user, is refused before it is delivered …
    checked = gateway.check("studio", "bob", prompt="another landscape", medium="image")
    with pytest.raises(Refused) as refused:
        gateway.complete("studio", checked.ticket_id, media=[image])
    assert refused.value.reason == "moderation.blocked" and refused.value.clause == "DSP-10"
    assert refused.value.details["detector"] == "hash-bank"
    # … and uploaded again as the input of an edit, too.
    with pytest.raises(Refused):
        gateway.check(
            "studio", "bob", prompt="brighten", medium="image", operation="image.edit", media=[image]
        )
    # The restricted account may not generate at all.
    with pytest.raises(Refused) as barred:
        gateway.check("studio", "alice", prompt="anything", medium="image")
    assert barred.value.reason == "identity.restricted"

    # The affected user appeals with the token from their notice; the decider may not answer it.
    token = cases.appeal_token(gateway.keys, outcome.decision.id, alice.id)
    with gateway.db.session() as session:
        appeal = cases.file_appeal(
            session,
            gateway.keys,
            gateway.settings,
            outcome.decision.id,
            "The picture is a labeled artwork, not news.",
            token=token,
        )
        appeal_id = appeal.id
    with pytest.raises(Forbidden), gateway.db.session() as session:
        cases.decide_appeal(
            session,
            gateway.keys,
            gateway.settings,
            appeal_id,
            overturn=True,
            reasons="mine",
            actor="operator:rita",
        )
    with gateway.db.session() as session:
        answer = cases.decide_appeal(
            session,
            gateway.keys,
            gateway.settings,
            appeal_id,
            overturn=True,
            reasons="It is labeled and captioned as art.",
            actor="operator:sam",
        )
        assert answer.decision.outcome == "overturned"
    with gateway.db.session() as session:
        assert provenance.get_generation(session, produce_id).taken_down_at is None
        account = session.get(Account, alice.id)
        assert account is not None and identity.effective_status(account) == "active"
        assert {a.status for a in cases.actions_of(session, case_id)} == {"reverted"}

    # The hash is out of the bank: the same picture may be generated again, the user may generate.
    again = gateway.check("studio", "alice", prompt="the landscape again", medium="image")
    assert gateway.complete("studio", again.ticket_id, media=[image]).media

    kinds = {e.event_type for e in _events(gateway, "case.")} | {
        e.event_type for e in _events(gateway, "provenance.")
    }
    assert {
        "case.complaint_received",
        "case.decided",
        "case.action.takedown",
        "case.action.sanction",
        "case.appealed",
        "case.appeal_decided",
        "provenance.taken_down",
        "provenance.restored",
    } <= kinds
    with gateway.db.session() as session:
        import datetime as dt

        figures = cases.period_counts(
            session,
            dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
            dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
        )
    assert figures["complaints_received"] == 1 and figures["complaints_closed"] == 1
    assert figures["handled_within_deadline"] == 1 and figures["takedowns"] == 1
    assert figures["sanctions"] == 1 and figures["appeals"] == 1 and figures["reversals"] == 1


def test_dsp12_appeals_of_unknown_or_others_decisions_get_the_same_answer(
    client: TestClient, gateway: Gateway, svc: ServiceWithKey
) -> None:
    produce_id, _ = generate_image(gateway, "alice", picture(12))
    assert complain_api(client, gateway, produce_id=produce_id).status_code == 201
    outcome = _decide(gateway, _case_id(gateway), takedown=True)
    decision_id = outcome.decision.id
    grounds = {"grounds": "This is wrong, please check again."}
    answers = [
        client.post("/v1/appeals", json={"decision_id": "0" * 32, "token": "x" * 40, **grounds}),
        client.post("/v1/appeals", json={"decision_id": decision_id, "token": "x" * 40, **grounds}),
        # bob is a real user of the same service, but not the one the decision is about
        client.post(
            "/v1/appeals", json={"decision_id": decision_id, "user": "bob", **grounds}, headers=svc.headers
        ),
        client.post(
            "/v1/appeals", json={"decision_id": "nope", "user": "bob", **grounds}, headers=svc.headers
        ),
    ]
    assert [a.status_code for a in answers] == [404] * 4
    assert len({a.text for a in answers}) == 1, "the answers must not tell the cases apart"
    assert (
        client.post("/v1/appeals", json={"decision_id": decision_id, "user": "alice", **grounds}).status_code
        == 401
    )
    ok = client.post(
        "/v1/appeals", json={"decision_id": decision_id, "user": "alice", **grounds}, headers=svc.headers
    )
    assert ok.status_code == 201, ok.text
    again = client.post(
        "/v1/appeals", json={"decision_id": decision_id, "user": "alice", **grounds}, headers=svc.headers
    )
    assert again.status_code == 409
    with gateway.db.session() as session:
        assert len(cases.appeals(session)) == 1
    with pytest.raises(NotFound), gateway.db.session() as session:
        cases.file_appeal(session, gateway.keys, gateway.settings, decision_id, "x" * 20, account_id=None)
    with pytest.raises(Conflict), gateway.db.session() as session:
        cases.decide(
            session,
            gateway.keys,
            gateway.settings,
            _case_id(gateway),
            cases.DecisionInput("violation", "g", "A.1.7", "f"),
            actor="operator:x",
        )


def test_dsp10_gai14_sanctions_suspend_until_and_close_with_reason_notice_and_appeal(
    client: TestClient, gateway: Gateway, svc: ServiceWithKey
) -> None:
    import datetime as dt

    until = dt.datetime.now(dt.UTC) + dt.timedelta(days=7)
    produce_id, _ = generate_image(gateway, "alice", picture(13))
    assert complain_api(client, gateway, produce_id=produce_id, category="illegal").status_code == 201
    outcome = _decide(gateway, _case_id(gateway), sanction=cases.SanctionInput("suspended", until=until))
    with gateway.db.session() as session:
        alice = session.scalars(select(Account).where(Account.external_id == "alice")).one()
        assert identity.effective_status(alice) == "suspended" and alice.status_until is not None
        assert f"case {_case_id(gateway)}" in (alice.status_reason or "")  # the reason names the case
        [action] = cases.actions_of(session, _case_id(gateway))
        assert action.details["until"] == until.isoformat() and action.details["before"]["status"] == "active"
        # The notice to the user states the reasons and how to appeal.
        from synthgate.cases.models import Notice

        [notice] = session.scalars(select(Notice).where(Notice.recipient == "user")).all()
        body = cases.notice_body(gateway.keys, notice)
        assert "Ground: DSP-11" in body and "appeal within" in body and outcome.decision.id in body
    with pytest.raises(Refused) as barred:
        gateway.check("studio", "alice", prompt="hello", medium="image")
    assert barred.value.reason == "identity.suspended"

    # Closing is final: an overturned appeal records that the account cannot be reopened.
    produce_bob, _ = generate_image(gateway, "bob", picture(14))
    assert complain_api(client, gateway, produce_id=produce_bob, category="violence").status_code == 201
    with gateway.db.session() as session:
        case_bob = session.scalars(select(Case.id).where(Case.produce_id == produce_bob)).one()
    closed = _decide(gateway, case_bob, sanction=cases.SanctionInput("closed"))
    with gateway.db.session() as session:
        bob = session.scalars(select(Account).where(Account.external_id == "bob")).one()
        appeal = cases.file_appeal(
            session,
            gateway.keys,
            gateway.settings,
            closed.decision.id,
            "I did nothing wrong here.",
            token=cases.appeal_token(gateway.keys, closed.decision.id, bob.id),
        )
        appeal_id = appeal.id
    with gateway.db.session() as session:
        answer = cases.decide_appeal(
            session,
            gateway.keys,
            gateway.settings,
            appeal_id,
            overturn=True,
            reasons="Mistaken identity.",
            actor="operator:sam",
        )
        assert "cannot be reopened" in answer.decision.statement["reverted"]["sanction"]
        assert session.get(Account, bob.id).status == "closed"  # type: ignore[union-attr]
    # An open appeal past its deadline is escalated, once.
    with gateway.db.session() as session:
        open_appeal = cases.file_appeal(
            session,
            gateway.keys,
            gateway.settings,
            outcome.decision.id,
            "The post was a quote, not mine.",
            token=cases.appeal_token(gateway.keys, outcome.decision.id, alice.id),
        )
        late = open_appeal.due_at + dt.timedelta(hours=1)
    with gateway.db.session() as session:
        assert cases.check_deadlines(session, gateway.settings, now=late)["escalated"] == 1
    with gateway.db.session() as session:
        assert cases.check_deadlines(session, gateway.settings, now=late)["escalated"] == 0
    assert any(e.data.get("appeal") for e in _events(gateway, "case.deadline_breached"))
