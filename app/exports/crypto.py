"""ECMA-376 Agile encryption of an OOXML package, with msoffcrypto-tool's primitives, streamed.

msoffcrypto-tool's `OOXMLFile.encrypt` holds the package, its ciphertext and the compound file in
memory (three copies of a file that is hundreds of MB for a million recipients). The same
algorithm is run here segment by segment from one temp file into another, with the library's
own key derivation, cipher helpers, EncryptionInfo XML and compound-file layout.

The password is used once, by `derive_key_material`, in the request that carries it: it yields
the key envelope (salts, verifier, the data key encrypted under the password-derived key) and
the random data key. Neither can give back the password; the data key is kept only until the
file is written (see service.py).
"""

from __future__ import annotations

import base64
import hmac
import os
import shutil
from struct import pack

from msoffcrypto.method.container.ecma376_encrypted import ECMA376Encrypted, ECMA376EncryptedLayout, Header
from msoffcrypto.method.ecma376_agile import (ECMA376Agile, ECMA376AgileEncryptionInfo, _encrypt_aes_cbc,
                                              _encrypt_aes_cbc_padded, _generate_iv, _get_hash_func,
                                              _normalize_key, _random_buffer, blkKey_dataIntegrity1,
                                              blkKey_dataIntegrity2)

SEGMENT = 4096  # the format's segment length
COPY_CHUNK = 1 << 20

_FIELDS = ("keyDataSalt", "encryptedKeySalt", "verifierHashInput", "verifierHashValue", "encryptedKeyValue")


def derive_key_material(password: str, spin_count: int = 100_000) -> dict:
    """Key envelope + random data key for one file (CPU-bound: run it in a thread)."""
    info, secret_key = ECMA376Agile.generate_encryption_parameters(password, None, spin_count)
    values = (info.keyData.saltValue, info.encryptedKey.saltValue, info.encryptedVerifierHashInput,
              info.encryptedVerifierHashValue, info.encryptedKeyValue)
    out = {k: base64.b64encode(v).decode() for k, v in zip(_FIELDS, values)}
    out["spinCount"] = spin_count
    out["secretKey"] = base64.b64encode(secret_key).decode()
    return out


def _info(material: dict) -> tuple[ECMA376AgileEncryptionInfo, bytes]:
    info = ECMA376AgileEncryptionInfo()
    info.spinCount = int(material["spinCount"])
    raw = {k: base64.b64decode(material[k]) for k in _FIELDS}
    info.keyData.saltValue = raw["keyDataSalt"]
    info.encryptedKey.saltValue = raw["encryptedKeySalt"]
    info.encryptedVerifierHashInput = raw["verifierHashInput"]
    info.encryptedVerifierHashValue = raw["verifierHashValue"]
    info.encryptedKeyValue = raw["encryptedKeyValue"]
    return info, base64.b64decode(material["secretKey"])


class _OnDisk:
    """Stands for a stream's content in the container layout: only its length is read."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.size = os.path.getsize(path)

    def __len__(self) -> int:
        return self.size


class _Container(ECMA376Encrypted):
    """The library's compound-file writer, writing into a real file and copying the big stream
    from disk (its own writer zero-fills the whole size in memory first)."""

    def write_file(self, out) -> None:
        layout = ECMA376EncryptedLayout(self._header.sectorSize)
        self._set_sector_locations_of_streams(layout)
        self._detect_sector_num(layout)
        self._header.firstDirectorySectorLocation = layout.directoryEntryPos
        self._header.firstMiniFatSectorLocation = layout.miniFatPos
        self._header.numMiniFatSectors = layout.numMiniFatSectors
        self._dirs[0].StartingSectorLocation = layout.miniFatDataPos
        self._dirs[0].Content = b"\0" * (64 * layout.miniFatNum)
        self._dirs[1].StartingSectorLocation = layout.encryptionPackagePos
        for i in range(min(layout.fatSectorNum, Header.FIRSTNUMDIFAT)):
            self._header.difat.append(layout.fatPos + i)
        self._header.numFatSectors = layout.fatSectorNum
        self._header.numDifatSectors = layout.difatSectorNum
        if layout.difatSectorNum > 0:
            self._header.firstDifatSectorLocation = layout.difatPos
        out.truncate(layout.totalSize)  # zeros, without holding them in memory
        out.seek(0)
        self._header.write_to(out)
        self._write_DIFAT(out, layout)
        self._write_FAT_start(out, layout)
        self._write_MiniFAT(out, layout)
        self._write_directory_entries(out, layout)
        self._write_Content(out, layout)

    def _write_Content(self, obuf, layout) -> None:
        for d in self._dirs:
            if isinstance(d.Content, _OnDisk):
                obuf.seek(layout.offsetData(d.StartingSectorLocation))
                with open(d.Content.path, "rb") as src:
                    shutil.copyfileobj(src, obuf, COPY_CHUNK)
            elif len(d.Content):
                if len(d.Content) <= 4096:
                    obuf.seek(layout.offsetMiniData(d.StartingSectorLocation))
                else:
                    obuf.seek(layout.offsetData(d.StartingSectorLocation))
                obuf.write(d.Content)


def encrypt_file(plain_path: str, out_path: str, material: dict) -> int:
    """Encrypt the OOXML package at plain_path into an ECMA-376 Agile compound file at
    out_path; returns its size. Memory stays at a few segments whatever the file size."""
    info, secret_key = _info(material)
    params, salt = info.encryptedKey, info.keyData.saltValue
    hash_fn = _get_hash_func(params.hashName)
    hmac_key = _random_buffer(info.keyData.hashSize)
    mac = hmac.new(hmac_key, digestmod=_get_hash_func(info.keyData.hashName))
    package_path = out_path + ".package"
    try:
        with open(plain_path, "rb") as src, open(package_path, "wb") as pkg:
            head = pack("<Q", os.path.getsize(plain_path))
            pkg.write(head)
            mac.update(head)
            i = 0
            while True:
                buf = src.read(SEGMENT)
                if not buf:
                    break
                iv = _normalize_key(hash_fn(salt + pack("<I", i)).digest(), params.saltSize)
                enc = _encrypt_aes_cbc_padded(buf, secret_key, iv, params.blockSize)
                pkg.write(enc)
                mac.update(enc)
                i += 1
        iv1 = _generate_iv(info.keyData, blkKey_dataIntegrity1, salt)
        iv2 = _generate_iv(info.keyData, blkKey_dataIntegrity2, salt)
        info.encryptedHmacKey = _encrypt_aes_cbc(hmac_key, secret_key, iv1)
        info.encryptedHmacValue = _encrypt_aes_cbc(mac.digest(), secret_key, iv2)
        encryption_info = info.getEncryptionDescriptorHeader() + info.toEncryptionDescriptor().encode("UTF-8")
        container = _Container(_OnDisk(package_path), encryption_info)
        with open(out_path, "wb") as out:
            container.write_file(out)
        return os.path.getsize(out_path)
    finally:
        if os.path.exists(package_path):
            os.unlink(package_path)
