"""OCR for pages without a text layer: scanned PDFs and images, read by Tesseract.

Engine: Debian's Tesseract 5.3 (`apt-get install tesseract-ocr tesseract-ocr-eng`,
`make tesseract`), called as a subprocess, one page per call. Chosen by
`bench/ocr.py` (docs/ocr.md): 0.8-1% character error rate on rasterised man pages
where RapidOCR, the PyPI alternative, was measured at 9.7%. Each call runs with
OMP_THREAD_LIMIT=1: Tesseract's own OpenMP threads made a page 2.5 to 3.5 times
slower on a busy two-core machine, so pages run in parallel instead, one Tesseract
process per worker (`ocr_pages`).

A missing engine is never an error here: `unavailable()` says why in one line, and
the loader turns that into a skip reason or a note.
"""

from __future__ import annotations

import concurrent.futures
import functools
import io
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from core.errors import QueryError

OCR_MODES = ("auto", "always", "never")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff"})
PAGE_TIMEOUT_S = 120.0  # per page; `--ocr-timeout`
DPI = 300  # PDF pages are rendered at this resolution for OCR (bench/ocr.py)
# "Almost no text": a page whose text layer has fewer letters and digits than this
# (a stamped page number, "Scanned with ...") and that shows an image is read by OCR.
MIN_TEXT_CHARS = 32
INSTALL_HINT = "apt-get install tesseract-ocr tesseract-ocr-eng, or `make tesseract`"


@dataclass(frozen=True)
class OcrOptions:
    """How pages without text are read.

    mode: "auto" (only PDF pages without a text layer, and images), "always"
        (every PDF page is rendered and read, for PDFs whose text layer is garbage)
        or "never" (scanned pages and images are skipped with a reason).
    dpi: resolution PDF pages are rendered at. page_timeout: seconds a page may
    take. workers: Tesseract processes at once (0: one per CPU). lang: Tesseract
    language(s), "eng" or "eng+deu" (each needs its tesseract-ocr-LANG package).
    """

    mode: str = "auto"
    dpi: int = DPI
    page_timeout: float = PAGE_TIMEOUT_S
    workers: int = 0
    lang: str = "eng"

    def __post_init__(self) -> None:
        if self.mode not in OCR_MODES:
            raise QueryError(f"ocr must be one of {', '.join(OCR_MODES)}, not {self.mode!r}",
                               param="ocr")
        if not 50 <= self.dpi <= 1200:
            raise QueryError(f"ocr dpi must be between 50 and 1200, not {self.dpi}",
                               param="ocr_dpi")
        if not self.page_timeout > 0:
            raise QueryError("ocr_timeout must be above 0 seconds", param="ocr_timeout")

    @property
    def enabled(self) -> bool:
        return self.mode != "never"

    @property
    def pool_size(self) -> int:
        return self.workers or os.cpu_count() or 1


class OcrFailed(Exception):
    """One page could not be read: the message is the one-line reason."""


@functools.lru_cache(maxsize=8)
def unavailable(lang: str = "eng") -> str | None:
    """None when Tesseract can read `lang`, else the one-line reason it cannot."""
    exe = shutil.which("tesseract")
    if exe is None:
        return f"tesseract is not installed ({INSTALL_HINT})"
    try:
        listed = subprocess.run([exe, "--list-langs"], capture_output=True, timeout=30,
                                text=True, errors="replace")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"tesseract does not run ({exc})"
    have = {line.strip() for line in listed.stdout.splitlines()[1:]}
    missing = [part for part in lang.split("+") if part not in have]
    if missing:
        return (f"tesseract has no {'+'.join(missing)} language data "
                f"(apt-get install {' '.join('tesseract-ocr-' + m for m in missing)})")
    return None


@functools.lru_cache(maxsize=1)
def engine_version() -> str:
    """"tesseract 5.3.0", or "" when it is not installed."""
    exe = shutil.which("tesseract")
    if exe is None:
        return ""
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30,
                         errors="replace")
    first = (out.stdout or out.stderr).splitlines()
    return first[0].strip() if first else "tesseract"


def ocr_image(image: bytes, *, lang: str = "eng", dpi: int | None = None,
              timeout: float = PAGE_TIMEOUT_S) -> str:
    """The text Tesseract reads in one image (PNG, JPEG or TIFF bytes, one page).

    `dpi` tells Tesseract the resolution when the image does not (a rendered PDF
    page). Raises OcrFailed with a one-line reason.
    """
    exe = shutil.which("tesseract")
    if exe is None:
        raise OcrFailed(unavailable(lang) or "tesseract is not installed")
    command = [exe, "stdin", "stdout", "-l", lang]
    if dpi:
        command += ["--dpi", str(dpi)]
    try:
        done = subprocess.run(command, input=image, capture_output=True, timeout=timeout,
                              env={**os.environ, "OMP_THREAD_LIMIT": "1"})
    except subprocess.TimeoutExpired as exc:  # subprocess.run has killed it
        raise OcrFailed(f"OCR took longer than {timeout:g} s") from exc
    except OSError as exc:
        raise OcrFailed(f"tesseract did not run ({exc.strerror})") from exc
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise OcrFailed(f"tesseract failed ({lines[-1][:160] if lines else done.returncode})")
    return done.stdout.decode("utf-8", "replace")


@dataclass(frozen=True)
class PageText:
    """One page read by OCR: its number (from 1), text, and the reason it failed."""

    number: int
    text: str = ""
    error: str = ""


def ocr_pages(images: Iterable[tuple[int, bytes, int | None]], options: OcrOptions,
              on_page: Callable[[int], None] | None = None) -> list[PageText]:
    """Read (page number, image bytes, dpi or None) with `options.pool_size` Tesseract
    processes at once, in page order.

    `images` is consumed lazily in the calling thread, a few pages ahead of the
    pool (PDF rendering is not thread-safe, and a 500-page scan rendered at once
    would not fit in memory); `on_page(done)` is called there as pages finish.
    """
    out: dict[int, PageText] = {}
    source = iter(images)
    width = options.pool_size
    with concurrent.futures.ThreadPoolExecutor(width, thread_name_prefix="ocr") as pool:
        running: dict[concurrent.futures.Future, int] = {}

        def submit_next() -> bool:
            item = next(source, None)
            if item is None:
                return False
            number, image, dpi = item
            future = pool.submit(ocr_image, image, lang=options.lang, dpi=dpi,
                                 timeout=options.page_timeout)
            running[future] = number
            return True

        while len(running) < 2 * width and submit_next():
            pass
        while running:
            finished, _ = concurrent.futures.wait(
                running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in finished:
                number = running.pop(future)
                try:
                    out[number] = PageText(number, future.result())
                except OcrFailed as exc:
                    out[number] = PageText(number, error=str(exc))
                if on_page is not None:
                    on_page(len(out))
                submit_next()
    return [out[n] for n in sorted(out)]


def image_pages(data: bytes) -> list[tuple[int, bytes, int | None]]:
    """(page number, PNG bytes, dpi or None) of each frame of an image file: one for
    PNG and JPEG, one per page of a multi-page TIFF. Raises OcrFailed if Pillow
    cannot decode it (every frame is decoded here, before any OCR)."""
    from PIL import Image, ImageSequence

    pages = []
    try:
        image = Image.open(io.BytesIO(data))
        for number, frame in enumerate(ImageSequence.Iterator(image), start=1):
            dpi = frame.info.get("dpi")
            # A PNG's pixels-per-metre rounds 300 dpi to 299.9994: whole dots are meant.
            dpi = round(float(dpi[0])) if dpi and dpi[0] and float(dpi[0]) >= 50 else None
            pages.append((number, _png(frame), dpi))
    except Exception as exc:  # Pillow raises OSError, SyntaxError, EOFError, struct.error ...
        first = (str(exc).splitlines() or [""])[0][:120]
        raise OcrFailed(f"not a readable image ({type(exc).__name__}: {first})") from exc
    if not pages:
        raise OcrFailed("not a readable image (no frames)")
    return pages


def _png(frame) -> bytes:
    """One frame as 8-bit grayscale PNG, the input Tesseract reads fastest; a
    transparent background becomes white (its pixels are often black underneath)."""
    from PIL import Image

    if frame.mode in ("RGBA", "LA", "PA") or "transparency" in frame.info:
        rgba = frame.convert("RGBA")
        frame = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    if frame.mode not in ("L", "1"):
        frame = frame.convert("L")
    buffer = io.BytesIO()
    frame.save(buffer, format="PNG")
    return buffer.getvalue()


def render_page(page, dpi: int) -> bytes:
    """A pypdfium2 page rendered for OCR: grayscale PNG at `dpi`."""
    bitmap = page.render(scale=dpi / 72, grayscale=True)
    try:
        return _png(bitmap.to_pil())
    finally:
        bitmap.close()


def text_chars(text: str) -> int:
    """Letters and digits in `text`: how much a page's text layer really holds."""
    return sum(ch.isalnum() for ch in text)
