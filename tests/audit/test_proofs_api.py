"""Inclusion and consistency proofs over the API (operator session) and the CLI, checked by the
client against the signed checkpoint; personal data crypto-shredded (GAI-11); retention purge."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from synthgate.audit import service as audit
from synthgate.audit.checkpoint import NoteVerifier
from synthgate.audit.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from synthgate.audit.models import AuditArchivedLeaf, AuditEvent
from synthgate.audit.proofs import TreeLevels
from synthgate.errors import InvalidInput
from synthgate.gateway.sdk import Gateway
from synthgate.jobs import audit_signer, integrate_and_checkpoint
from synthgate.operators import service as operators
from tests.audit.test_tamper import fill_log


def operator_token(gateway: Gateway, role: str) -> str:
    with gateway.db.session() as session:
        operator, _ = operators.create_operator(
            session, username=f"{role}1", role=role, actor="test", password="a-long-passphrase-42!"
        )
        _, token = operators.start_session(session, gateway.settings, operator)
    return token


def test_tree_levels_proofs_equal_the_reference_proofs() -> None:
    rng = random.Random(3)
    leaves = [leaf_hash(bytes([i % 256, i // 256])) for i in range(300)]
    levels = TreeLevels(leaves)
    for _ in range(200):
        size = rng.randrange(1, 301)
        index = rng.randrange(size)
        old = rng.randrange(0, size + 1)
        assert levels.inclusion_proof(index, size) == inclusion_proof(leaves, index, size)
        assert levels.consistency_proof(old, size) == consistency_proof(leaves, old, size)
        assert levels.root(size) == audit.root_from_leaf_hashes(leaves[:size])


def test_csl21_inclusion_and_consistency_proofs_over_the_api(client: TestClient, gateway: Gateway) -> None:
    fill_log(gateway, events=30, every=10)
    headers = {"Authorization": f"Bearer {operator_token(gateway, 'auditor')}"}
    head = client.get("/v1/audit/checkpoint", headers=headers)
    assert head.status_code == 200, head.text
    verifier = NoteVerifier.from_vkey(head.json()["vkey"])
    assert verifier.vkey() == audit_signer(gateway).vkey()
    checkpoint = verifier.verify(head.json()["note"])

    proof = client.get("/v1/audit/proof/inclusion", params={"index": 17}, headers=headers).json()
    entry_hash = leaf_hash(audit.canonical_json(proof["entry"]))
    assert entry_hash.hex() == proof["leaf_hash"] and proof["entry"]["data"]["n"] == 17
    assert verify_inclusion(
        entry_hash, 17, checkpoint.size, [bytes.fromhex(p) for p in proof["proof"]], checkpoint.root
    )

    consistency = client.get("/v1/audit/proof/consistency", params={"old": 10}, headers=headers).json()
    old = verifier.verify(consistency["old_checkpoint"])
    new = verifier.verify(consistency["new_checkpoint"])
    assert old.size == 10 and new.size == checkpoint.size
    assert verify_consistency(
        old.size, new.size, old.root, new.root, [bytes.fromhex(p) for p in consistency["proof"]]
    )

    verified = client.get("/v1/audit/verify", params={"from": 5, "to": 15}, headers=headers).json()
    assert verified["ok"] and verified["range"] == [5, 15]

    # Proofs only against signed roots; bad coordinates are clear 4xx errors.
    assert client.get("/v1/audit/proof/consistency", params={"old": 11}, headers=headers).status_code == 404
    assert (
        client.get("/v1/audit/proof/inclusion", params={"index": 10_000}, headers=headers).status_code == 422
    )
    assert client.get("/v1/audit/proof/inclusion", params={"index": -1}, headers=headers).status_code == 422


def test_csl21_proof_api_is_for_auditors_only(client: TestClient, gateway: Gateway) -> None:
    fill_log(gateway, events=3)
    assert client.get("/v1/audit/checkpoint").status_code == 401
    assert client.get("/v1/audit/checkpoint", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    reviewer = {"Authorization": f"Bearer {operator_token(gateway, 'reviewer')}"}
    assert client.get("/v1/audit/checkpoint", headers=reviewer).status_code == 403
    from tests.conftest import make_service

    service_key = make_service(gateway, slug="svc-a")  # a provider's service key never reads the whole log
    assert client.get("/v1/audit/checkpoint", headers=service_key.headers).status_code == 403


def test_gai11_shredding_a_subject_key_erases_its_data_and_the_log_still_verifies(gateway: Gateway) -> None:
    with gateway.db.session() as session:
        kept = audit.record(
            session,
            "identity.disputed",
            actor="operator:o1",
            subject_type="account",
            subject_id="acc-1",
            data={"outcome": "upheld"},
            personal={"phone": "+8613912345678", "name": "张三"},
            personal_subject="account:acc-1",
            keys=gateway.keys,
        )
        other = audit.record(
            session,
            "identity.disputed",
            actor="operator:o1",
            personal={"phone": "+8613800000000"},
            personal_subject="account:acc-2",
            keys=gateway.keys,
        )
        session.flush()
        ids = kept.id, other.id
    integrate_and_checkpoint(gateway)
    with gateway.db.session() as session:
        stored = session.get(AuditEvent, ids[0])
        assert stored is not None
        assert (
            "13912345678" not in audit.canonical_event_bytes(stored).decode()
        )  # only ciphertext in the leaf
        assert audit.unseal(session, gateway.keys, stored) == {"phone": "+8613912345678", "name": "张三"}
        assert audit.shred_subject(session, "account:acc-1", actor="operator:dpo")
    integrate_and_checkpoint(gateway)
    with gateway.db.session() as session:
        first, second = session.get(AuditEvent, ids[0]), session.get(AuditEvent, ids[1])
        assert first is not None and second is not None
        assert audit.unseal(session, gateway.keys, first) is None  # erased
        assert audit.unseal(session, gateway.keys, second) == {"phone": "+8613800000000"}  # others untouched
        report = audit.verify(session, audit_signer(gateway).verifier())
        assert report.ok and report.checkpoints == 2, report.problems
        with pytest.raises(InvalidInput, match="erased"):
            audit.record(
                session,
                "x",
                actor="system",
                personal={"a": "b"},
                personal_subject="account:acc-1",
                keys=gateway.keys,
            )


def test_csl21_gai11_retention_purge_keeps_the_log_verifiable(gateway: Gateway) -> None:
    fill_log(gateway, events=24)
    with gateway.db.session() as session:
        audit.place_hold(session, case_id="case-7", subject_id="acc1", reason="complaint", actor="operator:c")
    integrate_and_checkpoint(gateway)
    # Logs younger than six months are never purged, whatever the policy says (CSL-21).
    with pytest.raises(InvalidInput, match="at least 184 days"):
        audit.RetentionPolicy.from_settings(190, {"test": 30})
    policy = audit.RetentionPolicy.from_settings(190, {"test.kind0": 500, "test": 200})
    with gateway.db.session() as session:
        assert audit.purge(session, policy).events == 0  # nothing is old enough yet
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=300)
    with gateway.db.session() as session:
        result = audit.purge(session, policy, now=later)
    integrate_and_checkpoint(gateway)
    with gateway.db.session() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.event_type.like("test.%"))).all()
        archived = session.scalars(select(AuditArchivedLeaf)).all()
        # Purged payloads are either archived (the row freed: SQLite, or a PostgreSQL month whose
        # every retention has passed) or still a blanked row in a month not yet droppable.
        blanked = {r.leaf_index for r in rows if r.purged_at is not None}
        purged = {a.leaf_index for a in archived} | blanked
        held = {r.leaf_index for r in rows if r.subject_id == "acc1"}
        young = {r.leaf_index for r in rows if r.event_type == "test.kind0"}
        assert held and young and purged
        assert {r.leaf_index for r in rows} - blanked == held | young and not purged & (held | young)
        assert result.events == len(purged) and result.archived == len(archived)
        assert all(a.event_type.startswith("test.") and len(a.leaf_hash) == 64 for a in archived)
        assert all(r.data == {} and r.actor == "" and r.leaf_hash for r in rows if r.purged_at)
        report = audit.verify(session, audit_signer(gateway).verifier())
        assert report.ok and report.purged == len(purged), report.problems
        # Dropping a payload without an audited purge is an edit, and is named.
        victim = min(young)
        session.execute(
            update(AuditEvent).where(AuditEvent.leaf_index == victim).values(purged_at=later, data={})
        )
        session.flush()
        report = audit.verify(session, audit_signer(gateway).verifier())
        assert not report.ok and report.first_bad_index == victim
