"""GB 45438 5.2: a visible text label on every frame of an image, in the image's own container.

Only the label patch is touched: the other pixels of each frame keep their values (palette
images keep their indices, 16-bit images keep 16 bits), frame durations and loop counts of
animations are kept, and EXIF, ICC profiles, XMP and PNG text chunks are carried over.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image, ImageSequence, PngImagePlugin

from synthgate.labeling.explicit import ExplicitOptions, labelers
from synthgate.labeling.explicit.render import LabelLayout, blend, layout
from synthgate.media import CorruptMedia, MediaError, MediaLimits, UnsupportedMedia
from synthgate.media import limits as media_limits
from synthgate.media.sniff import IMAGE_KINDS, sniff

FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF", "TIFF"})
_PALETTE_THRESHOLD = 0.5


def _animation(frames: list[Image.Image], info: Mapping[Any, Any]) -> dict[str, Any]:
    """Pillow's save parameters that keep every frame, its duration and the loop count."""
    return {
        "save_all": True,
        "append_images": frames[1:],
        "duration": [f.info.get("duration", 100) for f in frames],
        "loop": info.get("loop", 0),
    }


def open_image(data: bytes, limits: MediaLimits) -> Image.Image:
    """Open and fully decode, refusing bombs by their header before any pixel is decoded."""
    im = media_limits.open_image(data, limits)
    if im.format not in FORMATS:
        raise UnsupportedMedia(
            f"cannot draw a label on a {im.format} image; supported: {', '.join(sorted(FORMATS))}"
        )
    if im.format == "PNG":
        stored = _reinflated_png(data)
        if stored is not None:
            im = Image.open(io.BytesIO(stored))
    try:
        im.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise CorruptMedia(f"corrupt or truncated image: {exc}") from exc
    return im


def _mode_colours(mode: str, arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dark (plate/outline) and light (glyph) values in the frame's own mode."""
    if mode in ("I;16", "I"):
        top = max(65535.0, float(arr.max())) if mode == "I" else 65535.0
        return np.float32(0.0), np.float32(top)  # type: ignore[return-value]
    if mode == "F":
        return np.float32(0.0), np.float32(max(1.0, float(arr.max())))  # type: ignore[return-value]
    table: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
        "L": ((0,), (255,)),
        "LA": ((0, 255), (255, 255)),
        "RGB": ((0, 0, 0), (255, 255, 255)),
        "RGBA": ((0, 0, 0, 255), (255, 255, 255, 255)),
        # CMYK: full black ink for the plate, no ink at all for the glyphs.
        "CMYK": ((0, 0, 0, 255), (0, 0, 0, 0)),
    }
    dark, light = table[mode]
    d = np.array(dark, dtype=np.float32)
    lt = np.array(light, dtype=np.float32)
    # A single-channel frame is a 2-D array: blend with scalars, not length-1 vectors.
    return (d[0], lt[0]) if len(dark) == 1 else (d, lt)


def _palette_indices(frame: Image.Image) -> tuple[int, int]:
    """A black and a white palette entry: free slots if any, else the darkest and lightest colours."""
    palette = frame.getpalette() or []
    entries: list[tuple[int, ...]] = [tuple(palette[i : i + 3]) for i in range(0, len(palette), 3)]
    used: set[Any] = {index for _, index in (frame.getcolors(256) or [])}
    transparency = frame.info.get("transparency")
    if isinstance(transparency, int):
        used.add(transparency)
    used_indices: set[int] = {int(i) for i in used}
    free = [i for i in range(256) if i not in used_indices]
    while len(entries) < 256:
        entries.append((0, 0, 0))
    if len(free) >= 2:
        dark, light = free[0], free[1]
        entries[dark], entries[light] = (0, 0, 0), (255, 255, 255)
        frame.putpalette([c for entry in entries for c in entry])
        return dark, light

    def luma(i: int) -> float:
        r, g, b = entries[i][:3]
        return 0.299 * r + 0.587 * g + 0.114 * b

    candidates = sorted(used_indices - ({transparency} if isinstance(transparency, int) else set()))
    return min(candidates, key=luma), max(candidates, key=luma)


def label_frame(frame: Image.Image, options: ExplicitOptions) -> tuple[Image.Image, LabelLayout]:
    """Draw the label on one frame (in place where the mode allows) and return it."""
    lay = layout(frame.width, frame.height, options)
    left, top = lay.box[:2]
    mode = frame.mode
    if mode in ("I;16B", "I;16L", "I;16N"):
        frame = frame.convert("I;16")
        mode = "I;16"
    if mode == "PA":
        frame = frame.convert("RGBA")
        mode = "RGBA"
    if mode == "P":
        dark, light = _palette_indices(frame)
        patch = np.array(frame.crop(lay.box))
        patch[lay.background >= _PALETTE_THRESHOLD] = dark
        patch[lay.foreground >= _PALETTE_THRESHOLD] = light
        frame.paste(_to_image(patch, "P"), (left, top))
        return frame, lay
    if mode == "1":
        patch = np.array(frame.crop(lay.box).convert("L"))
        patch[lay.background >= _PALETTE_THRESHOLD] = 0
        patch[lay.foreground >= _PALETTE_THRESHOLD] = 255
        frame.paste(_to_image(patch, "L").convert("1"), (left, top))
        return frame, lay
    if mode not in ("L", "LA", "RGB", "RGBA", "CMYK", "I;16", "I", "F"):
        frame = frame.convert("RGBA" if "A" in mode else "RGB")
        mode = frame.mode
    patch = np.array(frame.crop(lay.box))
    dark_c, light_c = _mode_colours(mode, patch)
    out = blend(patch, lay, dark_c, light_c)
    frame.paste(_to_image(out, mode), (left, top))
    return frame, lay


def _to_image(arr: np.ndarray, mode: str) -> Image.Image:
    # frombytes takes the raw layout of each mode as numpy holds it (CMYK, I;16, I, F included).
    return Image.frombytes(mode, (arr.shape[1], arr.shape[0]), np.ascontiguousarray(arr).tobytes())


def _is_lossless_webp(data: bytes) -> bool:
    return b"VP8L" in data[:64] or (
        b"VP8X" in data[:32] and b"VP8L" in data[:4096] and b"VP8 " not in data[:4096]
    )


_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_PNG_COLOUR_TYPES = {"L": 0, "RGB": 2, "LA": 4, "RGBA": 6}


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, pos = [], 8
    while pos + 12 <= len(data):
        size = struct.unpack(">I", data[pos : pos + 4])[0]
        kind = data[pos + 4 : pos + 8]
        chunks.append((kind, data[pos : pos + 12 + size]))
        pos += 12 + size
        if kind == b"IEND":
            break
    return chunks


_IDAT_CRC = zlib.crc32(b"IDAT")


def _crc32(data: bytes, start: int) -> int:
    try:
        from isal import isal_zlib
    except ImportError:  # pragma: no cover - isal is a dependency
        return zlib.crc32(data, start)
    return int(isal_zlib.crc32(data, start))


def _deflate(raw: bytes | memoryview) -> bytes:
    """zlib-format deflate; ISA-L level 1 is ~40x faster than zlib here at Pillow level-6 sizes."""
    try:
        from isal import isal_zlib
    except ImportError:  # pragma: no cover - isal is a dependency; zlib keeps working without it
        sample = raw[: 256 * 1024]
        noisy = len(zlib.compress(sample, 1)) > 0.5 * len(sample)
        packer = zlib.compressobj(1, zlib.DEFLATED, 15, 9, zlib.Z_RLE if noisy else zlib.Z_DEFAULT_STRATEGY)
        return packer.compress(raw) + packer.flush()
    return bytes(isal_zlib.compress(raw, 1))


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _reinflated_png(data: bytes) -> bytes | None:
    """The same PNG with its image data inflated by ISA-L and stored uncompressed, or None.

    Inflating is most of a PNG decode (~20 of ~24 ms at 1024x1024 with zlib); ISA-L inflates
    ~2.5x faster, and Pillow then only copies stored blocks and unfilters. Every other chunk is
    kept byte for byte, so the decoded image and its info are the same. Only for still,
    non-interlaced PNGs whose data inflates to exactly the size the header declares (computed
    from the header the limits already checked, so the inflate is bounded); anything else returns
    None and takes Pillow's own path, which reports errors as usual.
    """
    try:
        from isal import isal_zlib
    except ImportError:  # pragma: no cover - isal is a dependency
        return None
    chunks = _png_chunks(data)
    if not chunks or chunks[0][0] != b"IHDR" or any(kind == b"acTL" for kind, _ in chunks):
        return None
    width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1][8:21])
    channels = _PNG_CHANNELS.get(ctype)
    if channels is None or interlace != 0:
        return None
    expected = height * (1 + (width * depth * channels + 7) // 8)
    inflater = isal_zlib.decompressobj()
    try:
        raw = inflater.decompress(b"".join(c[8:-4] for kind, c in chunks if kind == b"IDAT"), expected + 1)
    except Exception:  # isal's IsalError (untyped) on corrupt data: Pillow's own decode reports it
        return None
    if len(raw) != expected or not inflater.eof:
        return None
    body = zlib.compress(raw, 0)
    idat = struct.pack(">I", len(body)) + b"IDAT" + body + struct.pack(">I", _crc32(body, _IDAT_CRC))
    out, placed = [_PNG_SIG], False
    for kind, raw_chunk in chunks:
        if kind != b"IDAT":
            out.append(raw_chunk)
        elif not placed:
            out.append(idat)
            placed = True
    return b"".join(out)


def _fast_png(data: bytes, frame: Image.Image) -> bytes | None:
    """Swap only the pixel data of an 8-bit, non-interlaced PNG; every other chunk stays as it was.

    Pillow tries every PNG filter on every row, which costs several times the compression itself;
    here each row uses the Up filter (vectorised) and ISA-L deflate. Returns None for anything
    else (16-bit, palette, interlaced), which takes Pillow's path.
    """
    colour = _PNG_COLOUR_TYPES.get(frame.mode)
    chunks = _png_chunks(data)
    if colour is None or not chunks or chunks[0][0] != b"IHDR":
        return None
    width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1][8:21])
    if (width, height) != frame.size or depth != 8 or ctype != colour or interlace != 0:
        return None
    pixels = np.asarray(frame, dtype=np.uint8).reshape(height, -1)
    filtered = np.empty((height, pixels.shape[1] + 1), dtype=np.uint8)
    filtered[:, 0] = 2  # Up
    filtered[0, 1:] = pixels[0]
    np.subtract(pixels[1:], pixels[:-1], out=filtered[1:, 1:], dtype=np.uint8, casting="unsafe")
    body = _deflate(memoryview(filtered.data).cast("B"))
    idat = struct.pack(">I", len(body)) + b"IDAT" + body + struct.pack(">I", _crc32(body, _IDAT_CRC))
    out = [_PNG_SIG]
    placed = False
    for kind, raw_chunk in chunks:
        if kind == b"IDAT":
            if not placed:
                out.append(idat)
                placed = True
        elif kind != b"caBX":  # a C2PA manifest of the unlabeled content no longer matches it
            out.append(raw_chunk)
    return b"".join(out) if placed else None


def _save_exact(im: Image.Image, frames: list[Image.Image], data: bytes) -> tuple[bytes, bool]:
    """The encoded file, and whether decoding it gives back exactly ``frames`` (our own PNG writer:
    8-bit, lossless, the frame's own mode), so the caller may digest the frames in memory."""
    fmt = im.format or "PNG"
    if fmt == "PNG" and len(frames) == 1:
        fast = _fast_png(data, frames[0])
        if fast is not None:
            return fast, True
    return _save_pillow(im, frames, data), False


def _save_pillow(im: Image.Image, frames: list[Image.Image], data: bytes) -> bytes:
    fmt = im.format or "PNG"
    info = im.info
    params: dict[str, Any] = {}
    for key in ("icc_profile", "exif", "dpi"):
        if info.get(key):
            params[key] = info[key]
    if info.get("xmp") and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        params["xmp"] = info["xmp"]
    out = io.BytesIO()
    if fmt == "JPEG":
        # "keep" re-uses the source's quantisation tables and subsampling: the label is the only
        # visible change, the rest only goes through one more identical-table round trip.
        params.update(quality="keep", subsampling="keep", progressive=bool(info.get("progressive")))
        if not hasattr(frames[0], "quantization"):
            params.update(quality=95, subsampling=0)
        frames[0].save(out, "JPEG", **params)
    elif fmt == "PNG":
        pnginfo = PngImagePlugin.PngInfo()
        for key, value in getattr(im, "text", {}).items():
            if key == "XML:com.adobe.xmp":
                continue
            pnginfo.add_itxt(key, value) if not _latin1(value) else pnginfo.add_text(key, value)
        params["pnginfo"] = pnginfo
        if "transparency" in info and frames[0].mode in ("P", "L", "RGB", "I;16"):
            params["transparency"] = info["transparency"]
        frames[0].save(out, "PNG", compress_level=3, **params)
    elif fmt == "WEBP":
        lossless = _is_lossless_webp(data)
        extra: dict[str, Any] = {"lossless": lossless, "quality": 100 if lossless else 92}
        if len(frames) > 1:
            extra.update(_animation(frames, info))
        frames[0].save(out, "WEBP", **params, **extra)
    elif fmt == "GIF":
        extra = {}
        if "transparency" in info:
            extra["transparency"] = info["transparency"]
        if len(frames) > 1:
            extra.update(_animation(frames, info))
        elif info.get("duration"):
            extra["duration"] = info["duration"]
        frames[0].save(out, "GIF", **extra)
    elif fmt == "TIFF":
        compression = info.get("compression", "raw")
        frames[0].save(
            out,
            "TIFF",
            compression=compression if compression != "jpeg" else "tiff_adobe_deflate",
            save_all=len(frames) > 1,
            append_images=frames[1:],
            **params,
        )
    return out.getvalue()


def _latin1(value: str) -> bool:
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


class ImageLabeler:
    medium = "image"
    formats = FORMATS

    def apply(self, data: bytes, kind: str, options: ExplicitOptions) -> bytes:
        return self.apply_with_frames(data, kind, options)[0]

    def apply_with_frames(
        self, data: bytes, kind: str, options: ExplicitOptions
    ) -> tuple[bytes, list[Image.Image] | None]:
        """The labeled file and, when decoding it would give exactly these, its frames in memory
        (the binding's content digest then needs no second decode); None otherwise."""
        if sniff(data) not in IMAGE_KINDS:
            raise UnsupportedMedia("not an image this labeler can draw on (JPEG, PNG, WebP, GIF, TIFF)")
        im = open_image(data, options.limits)
        frames: list[Image.Image] = []
        try:
            if getattr(im, "n_frames", 1) == 1:
                labeled, _ = label_frame(im, options)
                frames.append(labeled)
            else:
                for frame in ImageSequence.Iterator(im):
                    copy = frame.copy()
                    copy.info = dict(frame.info)
                    labeled, _ = label_frame(copy, options)
                    labeled.info = copy.info
                    frames.append(labeled)
            out, exact = _save_exact(im, frames, data)
            return out, frames if exact else None
        except MediaError:
            raise
        except (OSError, ValueError, EOFError) as exc:
            raise CorruptMedia(f"corrupt or truncated image: {exc}") from exc


@labelers.register("image")
def _image_labeler() -> ImageLabeler:
    return ImageLabeler()
