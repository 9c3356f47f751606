"""The streamed encryption against msoffcrypto-tool's own decryption, for a file big enough that
the compound file needs DIFAT sectors (over ~7 MB) — the size of a big campaign's workbook."""

import io
import os
import zipfile

import msoffcrypto
import pytest
from msoffcrypto.exceptions import InvalidKeyError

from app.exports.crypto import derive_key_material, encrypt_file


def test_big_package_round_trips_with_integrity(tmp_path):
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w", zipfile.ZIP_STORED) as z:
        z.writestr("blob", os.urandom(9_000_000))
    material = derive_key_material("Big-file-password-1")
    assert "Big-file-password-1" not in str(material)
    size = encrypt_file(str(plain), str(tmp_path / "enc.xlsx"), material)
    assert size > plain.stat().st_size
    office = msoffcrypto.OfficeFile(open(tmp_path / "enc.xlsx", "rb"))
    office.load_key(password="Big-file-password-1")
    out = io.BytesIO()
    office.decrypt(out, verify_integrity=True)
    assert out.getvalue() == plain.read_bytes()
    other = msoffcrypto.OfficeFile(open(tmp_path / "enc.xlsx", "rb"))
    other.load_key(password="big-file-password-1")
    with pytest.raises(InvalidKeyError):
        other.decrypt(io.BytesIO())
