"""``synthgate watermark embed/detect`` run as real processes, with the key of a registered service."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from skimage import data

from synthgate.config import Settings
from synthgate.gateway.sdk import Gateway
from synthgate.keys import KeyStore
from tests.conftest import make_service, server_env


def sg(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "synthgate", *args],
        env=server_env(settings, COLUMNS="200"),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_lm5_cli_embeds_and_detects_with_the_service_key(
    settings: Settings, gateway: Gateway, tmp_path: Path
) -> None:
    make_service(gateway, "img")
    make_service(gateway, "other")
    source = tmp_path / "in.png"
    Image.fromarray(data.coffee()).save(source)
    out = tmp_path / "out.jpg"

    embedded = sg(settings, "watermark", "embed", str(source), "-o", str(out), "--payload",
                  "00000000000004d2", "--service", "img", "--json")  # fmt: skip
    assert embedded.returncode == 0, embedded.stderr
    assert json.loads(embedded.stdout)["embedded"] is True
    assert Image.open(out).format == "JPEG"

    # Metadata gone, shrunk to 0.75x and re-encoded: the mark still names the service and the payload.
    # (0.5x + JPEG 70 recovers it for ~95 % of keys; bench/watermark_robustness.py measures that.)
    shared = tmp_path / "shared.jpg"
    Image.open(out).resize((450, 300)).save(shared, quality=75)
    found = sg(settings, "watermark", "detect", str(shared), "--json")
    assert found.returncode == 0, found.stderr + found.stdout
    report = json.loads(found.stdout)
    assert report["detected"] and report["service"] == "img" and report["payload"] == "00000000000004d2"
    assert report["p_value"] <= 1e-6

    # The other service's key does not see it; the original never carried it.
    assert sg(settings, "watermark", "detect", str(shared), "--service", "other").returncode == 1
    clean = sg(settings, "watermark", "detect", str(source), "--json")
    assert clean.returncode == 1 and json.loads(clean.stdout)["detected"] is False


def test_lm5_cli_refuses_bad_payload_and_reports_not_embeddable(
    settings: Settings, gateway: Gateway, tmp_path: Path
) -> None:
    make_service(gateway, "img")
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (64, 64), "white").save(tiny)
    bad = sg(settings, "watermark", "embed", str(tiny), "-o", str(tmp_path / "x.png"), "--payload", "xyz",
             "--service", "img")  # fmt: skip
    assert bad.returncode == 2 and "16 hex digits" in bad.stderr
    small = sg(settings, "watermark", "embed", str(tiny), "-o", str(tmp_path / "x.png"), "--payload",
               "0123456789abcdef", "--service", "img", "--json")  # fmt: skip
    assert small.returncode == 3
    assert json.loads(small.stdout)["embedded"] is False
    assert not (tmp_path / "x.png").exists()


def test_watermark_keys_differ_per_service(settings: Settings) -> None:
    keys = KeyStore(settings)
    assert keys.watermark_key("a") != keys.watermark_key("b")
    assert keys.watermark_key("a") == KeyStore(settings).watermark_key("a")
    assert len(keys.watermark_key("a")) == 32


def test_lm5_cli_marks_and_reads_audio(settings: Settings, gateway: Gateway, tmp_path: Path) -> None:
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is missing: run `make system-deps`")
    make_service(gateway, "voice")
    source = tmp_path / "speech.wav"
    text = "The gateway marks every audio output it delivers, and the mark names the generation. " * 2
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(source), text], check=True)
    out = tmp_path / "marked.wav"
    embedded = sg(settings, "watermark", "embed", str(source), "-o", str(out), "--payload",
                  "00000000000004d2", "--service", "voice", "--json")  # fmt: skip
    assert embedded.returncode == 0, embedded.stderr + embedded.stdout
    assert json.loads(embedded.stdout) == {
        "embedded": True,
        "service": "voice",
        "format": "wav",
        "reason": None,
    }
    found = sg(settings, "watermark", "detect", str(out), "--json")
    assert found.returncode == 0, found.stderr + found.stdout
    assert json.loads(found.stdout)["payload"] == "00000000000004d2"
    assert sg(settings, "watermark", "detect", str(source)).returncode == 1
