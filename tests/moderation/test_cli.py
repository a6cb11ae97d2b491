"""``synthgate library`` and ``synthgate screen`` as real processes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from synthgate.config import Settings
from tests.cli.test_cli import sg


def test_dsp10_tc81_library_cli_import_approve_publish_export_and_screen(
    settings: Settings, tmp_path: Path
) -> None:
    source = tmp_path / "lib.csv"
    source.write_text(
        "kind,value,category,severity,admission_reason,admission_rule\n"
        "term,制造炸弹,A.1.5,5,explosives,R-1\n"
        "term,bomb recipe,A.1.5,4,explosives,R-1\n",
        encoding="utf-8",
    )
    assert json.loads(
        sg(settings, "library", "import", str(source), "--actor", "alice", "--json").stdout
    ) == {
        "proposed": 2,
        "status": "pending",
    }
    sg(settings, "library", "approve", "--actor", "bob")
    assert json.loads(sg(settings, "library", "publish", "--json").stdout)["version"] == 1

    exported = tmp_path / "out.csv"
    sg(settings, "library", "export", "-o", str(exported))
    rows = list(csv.DictReader(exported.open(encoding="utf-8")))
    assert {(r["value"], r["admitted_by"], r["decided_by"], r["added_in_version"]) for r in rows} == {
        ("制造炸弹", "alice", "bob", "1"),
        ("bomb recipe", "alice", "bob", "1"),
    }

    text = "how about a B.O.M.B r e c i p e?"
    screened = sg(settings, "screen", "--text", text, "--json", check=False)
    assert screened.returncode == 1
    verdict = json.loads(screened.stdout)
    assert verdict["action"] == "block" and verdict["findings"][0]["category"] == "A.1.5"
    a, b = verdict["findings"][0]["span"]
    assert text[a:b] == "B.O.M.B r e c i p e"
