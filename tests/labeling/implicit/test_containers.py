"""GB-E / GB-6.1 per container: written label read back by us and by third-party readers, content
decoded identically before and after, other metadata kept, rewriting keeps exactly one label."""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from synthgate.labeling.implicit import AigcLabel, read_labels, write_label
from synthgate.media.limits import decoded_av, decoded_frames
from synthgate.media.sniff import IMAGE_KINDS, sniff
from tests.labeling.implicit import media_factory as mf

SAMPLES: dict[str, Callable[[], bytes]] = {
    "jpeg": lambda: mf.image("JPEG"),
    "png": lambda: mf.image("PNG"),
    "png-rgba16": lambda: mf.image("PNG", mode="I;16"),
    "webp-lossless": lambda: mf.image("WEBP", mode="RGBA", lossless=True),
    "webp-lossy": lambda: mf.image("WEBP"),
    "tiff": lambda: mf.image("TIFF", compression="tiff_lzw"),
    "tiff-cmyk": lambda: mf.image("TIFF", mode="CMYK"),
    "gif": mf.animated_gif,
    "wav": mf.wav,
    "mp3": mf.mp3,
    "mp3-untagged": lambda: mf.mp3(tagged=False),
    "flac": mf.flac,
    "ogg": mf.ogg,
    "mp4": mf.video,
    "mp4-faststart": lambda: mf.video(faststart=True),
    "mp4-fragmented": lambda: mf.video(fragmented=True),
    "mov": lambda: mf.video("mov"),
    "mkv": lambda: mf.video("matroska"),
    "webm": lambda: mf.video("webm", "libvpx"),
    "docx": mf.docx,
    "markdown": lambda: "# 标题\n\n正文。\n".encode(),
    "markdown-front": lambda: b"---\ntitle: x\nAIGC: old\n---\nbody\n",
    "html": lambda: b"<!doctype html><html><head><title>t</title></head><body><p>hi</p></body></html>",
}


def _decoded(data: bytes) -> list[object]:
    kind = sniff(data)
    if kind in IMAGE_KINDS:
        return list(decoded_frames(data))
    if kind in ("markdown", "html", "docx"):
        from synthgate.labeling.implicit.binding import content_digest

        return [content_digest(data)]
    return list(decoded_av(data))


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_gbe_label_round_trip_never_changes_content(name: str, label: AigcLabel) -> None:
    original = SAMPLES[name]()
    labeled = write_label(original, label)
    found = read_labels(labeled)
    assert [f.label for f in found] == [label], found
    assert sniff(labeled) == sniff(original)
    before = _decoded(original)
    assert before, "the sample decodes to something"
    assert _decoded(labeled) == before


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_gb61_rewriting_updates_the_one_label_in_place(name: str, label: AigcLabel) -> None:
    original = SAMPLES[name]()
    first = write_label(original, label)
    second_label = AigcLabel(Label="1", ContentProducer=label.ContentProducer, ProduceID="gen-0002")
    second = write_label(first, second_label)
    assert [f.label for f in read_labels(second)] == [second_label]
    assert b"gen-0001" not in second.replace(b"\x00", b"")  # no stale copy of the old label
    if name not in ("mkv", "webm"):  # Matroska muxing draws a fresh random SegmentUID each time
        assert write_label(second, second_label) == second  # idempotent: no growth on repeat


def _exiftool(data: bytes, suffix: str, tmp_path: Path) -> dict[str, str]:
    path = tmp_path / f"f.{suffix}"
    path.write_bytes(data)
    out = subprocess.run(
        [
            "exiftool",
            "-j",
            "-G1",
            "-a",
            "-XMP-TC260:all",
            "-XMP-dc:all",
            "-ICC_Profile:ProfileDescription",
            "-IFD0:Make",
            "-ImageDescription",
            str(path),
        ],
        capture_output=True,
        check=True,
        text=True,
    )
    return dict(json.loads(out.stdout)[0])


@pytest.mark.usefixtures("exiftool")
@pytest.mark.parametrize("name", ["jpeg", "png", "webp-lossy", "webp-lossless", "tiff", "gif"])
def test_gbe_exiftool_reads_tc260_aigc(name: str, label: AigcLabel, tmp_path: Path) -> None:
    labeled = write_label(SAMPLES[name](), label)
    tags = _exiftool(labeled, sniff(labeled), tmp_path)
    assert json.loads(tags["XMP-TC260:Aigc"]) == label.to_dict()


@pytest.mark.usefixtures("exiftool")
def test_gbe_jpeg_keeps_exif_icc_and_other_xmp(label: AigcLabel, tmp_path: Path) -> None:
    from PIL import Image, ImageCms

    from synthgate.labeling.implicit import xmp

    img = Image.open(io.BytesIO(mf.image("PNG")))
    exif = Image.Exif()
    exif[0x010F] = "ProbeCam"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    other_xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="' + xmp.RDF_NS.encode() + b'">'
        b'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        b"<dc:format>image/jpeg</dc:format></rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes(), icc_profile=icc, xmp=other_xmp)
    labeled = write_label(buf.getvalue(), label)
    tags = _exiftool(labeled, "jpg", tmp_path)
    assert tags["IFD0:Make"] == "ProbeCam"
    assert "sRGB" in tags["ICC_Profile:ProfileDescription"]
    assert tags["XMP-dc:Format"] == "image/jpeg"
    assert json.loads(tags["XMP-TC260:Aigc"]) == label.to_dict()
    assert Image.open(io.BytesIO(labeled)).info["icc_profile"] == icc


def _ffprobe_tags(data: bytes, suffix: str, tmp_path: Path) -> dict[str, str]:
    path = tmp_path / f"f.{suffix}"
    path.write_bytes(data)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format_tags", "-of", "json", str(path)],
        capture_output=True,
        check=True,
        text=True,
    )
    return dict(json.loads(out.stdout)["format"]["tags"])


@pytest.mark.usefixtures("ffprobe")
@pytest.mark.parametrize(
    ("name", "suffix"),
    [("mp4", "mp4"), ("mp4-faststart", "mp4"), ("mov", "mov"), ("mkv", "mkv"), ("webm", "webm")],
)
def test_gbe_ffprobe_shows_aigc_and_keeps_title(
    name: str, suffix: str, label: AigcLabel, tmp_path: Path
) -> None:
    tags = _ffprobe_tags(write_label(SAMPLES[name](), label), suffix, tmp_path)
    assert json.loads(tags["AIGC"]) == label.to_dict()
    assert tags.get("title") == "probe"


def test_gbe_mp4_label_sits_in_udta_meta_keys(label: AigcLabel) -> None:
    from synthgate.labeling.implicit.mp4 import boxes

    labeled = write_label(mf.video(), label)
    (moov,) = [b for b in boxes(labeled) if b[0] == b"moov"]
    (udta,) = [b for b in boxes(labeled, moov[2], moov[3]) if b[0] == b"udta"]
    metas = [b for b in boxes(labeled, udta[2], udta[3]) if b[0] == b"meta"]
    layouts = [[kind for kind, *_ in boxes(labeled, m[2] + 4, m[3])] for m in metas]
    assert [b"hdlr", b"keys", b"ilst"] in layouts  # the keys-based (mdta) meta next to the iTunes one
    mdta = metas[layouts.index([b"hdlr", b"keys", b"ilst"])]
    assert b"mdta" in labeled[mdta[2] : mdta[2] + 40] and b"mdtaAIGC" in labeled[mdta[2] : mdta[3]]


def test_gbe_mutagen_reads_mp3_flac_ogg_and_other_tags_survive(label: AigcLabel) -> None:
    import mutagen
    from mutagen.id3 import ID3

    mp3 = write_label(mf.mp3(), label)
    tags = ID3(io.BytesIO(mp3))
    assert json.loads(str(tags.getall("TXXX:AIGC")[0].text[0])) == label.to_dict()
    assert str(tags.getall("TIT2")[0].text[0]) == "probe"  # the title frame written by the encoder
    for make in (mf.flac, mf.ogg):
        source = io.BytesIO(make())
        audio = mutagen.File(source)
        audio.tags["TITLE"] = ["probe"]
        source.seek(0)
        audio.save(source)
        labeled = io.BytesIO(write_label(source.getvalue(), label))
        reread = mutagen.File(labeled)
        assert json.loads(reread.tags["AIGC"][0]) == label.to_dict()
        assert reread.tags["TITLE"] == ["probe"]


def test_gbe_wav_chunk_and_docx_custom_property(label: AigcLabel) -> None:
    import zipfile

    labeled = write_label(mf.wav(), label)
    at = labeled.index(b"AIGC")
    size = int.from_bytes(labeled[at + 4 : at + 8], "little")
    assert json.loads(labeled[at + 8 : at + 8 + size]) == label.to_dict()
    doc = write_label(mf.docx(), label)
    with zipfile.ZipFile(io.BytesIO(doc)) as z:
        custom = z.read("docProps/custom.xml").decode()
        assert 'name="AIGC"' in custom
        assert "custom-properties" in z.read("_rels/.rels").decode()
        assert z.read("word/document.xml") == zipfile.ZipFile(io.BytesIO(mf.docx())).read("word/document.xml")


def test_gbe_text_forms_are_yaml_front_matter_and_html_meta(label: AigcLabel) -> None:
    import yaml

    md = write_label(b"body\n", label).decode()
    front = yaml.safe_load(md.split("---\n")[1])
    assert json.loads(front["AIGC"]) == label.to_dict()
    assert md.endswith("---\nbody\n")
    page = write_label(b"<html><head></head><body>x</body></html>", label).decode()
    assert '<head><meta name="AIGC" content="{&quot;Label&quot;:&quot;1&quot;' in page


def test_gbe_reader_finds_png_text_jpeg_usercomment_and_escaped_xmp(label: AigcLabel) -> None:
    from PIL import Image, PngImagePlugin

    img = Image.open(io.BytesIO(mf.image("PNG")))
    info = PngImagePlugin.PngInfo()
    info.add_text("AIGC", label.to_json())
    info.add_itxt("AIGC", json.dumps({"AIGC": label.to_dict()}))
    buf = io.BytesIO()
    img.save(buf, "PNG", pnginfo=info)
    forms = {f.form: f.label for f in read_labels(buf.getvalue())}
    assert forms == {"tEXt": label, "iTXt": label}
    # Writing fixes a two-label file to exactly one (GB-6.1).
    assert [f.form for f in read_labels(write_label(buf.getvalue(), label))] == ["xmp"]

    exif = Image.Exif()
    exif[0x8769] = {0x9286: b"ASCII\x00\x00\x00" + label.to_json().encode()}
    jbuf = io.BytesIO()
    img.save(jbuf, "JPEG", exif=exif.tobytes())
    found = read_labels(jbuf.getvalue())
    assert [(f.form, f.label) for f in found] == [("exif-usercomment", label)]
    assert [f.form for f in read_labels(write_label(jbuf.getvalue(), label))] == ["xmp"]

    escaped = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description rdf:about="" xmlns:TC260="http://www.tc260.org.cn/ns/AIGC/1.0/"><TC260:AIGC>'
        + label.to_json().replace('"', "&amp;quot;").encode()
        + b"</TC260:AIGC></rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    xbuf = io.BytesIO()
    img.save(xbuf, "JPEG", xmp=escaped)
    assert [(f.form, f.label) for f in read_labels(xbuf.getvalue())] == [("xmp-escaped", label)]
