"""PDF checks and a tiny PDF writer for generated reports.

A signed report travels inside the СЭМД as PDF only: the seed's МИС refuses a zip, and so do we, with a
clear error on that document rather than a broken СЭМД.
"""

from __future__ import annotations

from iemk_etl import errors
from iemk_etl.errors import DataError

ZIP_MAGIC = b"PK\x03\x04"


class NotPdfError(DataError, ValueError):
    default_kind = errors.SEMD_NOT_FORMED


def check(content: bytes, file_name: str) -> None:
    """Raise NotPdfError unless ``content`` is a PDF file."""
    if content.startswith(ZIP_MAGIC) or file_name.lower().endswith(".zip"):
        raise NotPdfError(f"отчёт «{file_name}» в формате .zip не поддерживается: в СЭМД вкладывается только .pdf")
    if not content.startswith(b"%PDF-"):
        raise NotPdfError(f"отчёт «{file_name}» не является файлом PDF")


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def simple_pdf(title: str, lines: list[str]) -> bytes:
    """A one-page PDF 1.4 with Helvetica text (Latin-1 only: non-Latin characters become '?')."""
    text = [title, *lines]
    ops = ["BT", "/F1 12 Tf", "50 780 Td", "14 TL"]
    ops += [f"({_escape(t.encode('latin-1', 'replace').decode('latin-1'))}) '" for t in text]
    ops.append("ET")
    stream = "\n".join(ops).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    return assemble(objects)


def assemble(objects: list[bytes]) -> bytes:
    """A PDF 1.4 file of these object bodies (object 1 the catalog), with its cross-reference table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
