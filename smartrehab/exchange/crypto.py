"""Hashes and signatures of the exchange packages: SM3 (GB/T 32905), SM2 (GM/T 0003, GM/T 0009) and Ed25519.

SM3 comes from OpenSSL (``hashlib.new("sm3")``) and falls back to gmssl. SM2 signing uses gmssl's curve
arithmetic with our own Z value (so the signer ID is not fixed to the default) and a nonce K drawn from
``secrets``: gmssl's own default nonce comes from ``random`` and would leak the private key.

Signatures are written in the forms OpenSSL reads, so a receiver can also check them with
``openssl pkeyutl -verify -rawin -digest sm3 -pkeyopt distid:<signer id>``:

* SM2: DER ``SEQUENCE { r INTEGER, s INTEGER }`` (GM/T 0009); the public key a PEM SubjectPublicKeyInfo
  (id-ecPublicKey, curve SM2 1.2.156.10197.1.301, uncompressed point).
* Ed25519: the 64 raw signature bytes; the public key a PEM SubjectPublicKeyInfo (RFC 8410).

The verifier needs this module and a public key only; the key-pair functions at the end are the sender's.
"""

from __future__ import annotations

import base64
import hashlib
import secrets as _secrets
from dataclasses import dataclass

from gmssl import sm2 as _gm_sm2

DEFAULT_SIGNER_ID = "1234567812345678"

_CURVE = _gm_sm2.default_ecc_table
_N = int(_CURVE["n"], 16)
# DER prefix of an SM2 SubjectPublicKeyInfo up to the 65-byte uncompressed point.
_SM2_SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d034200")
_ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


class SignatureError(ValueError):
    pass


# ---- SM3 -----------------------------------------------------------------------------------------
def _openssl_sm3() -> bool:
    try:
        hashlib.new("sm3")
        return True
    except ValueError:
        return False


_HAS_OPENSSL_SM3 = _openssl_sm3()


def sm3(data: bytes) -> bytes:
    if _HAS_OPENSSL_SM3:
        return hashlib.new("sm3", data).digest()
    from gmssl import func
    from gmssl import sm3 as _gm_sm3

    return bytes.fromhex(_gm_sm3.sm3_hash(func.bytes_to_list(data)))


def sm3_hex(data: bytes) -> str:
    return sm3(data).hex()


def file_digests(data: bytes) -> dict[str, str]:
    """The two payload / tag manifest digests of ``data``: {"sha256": hex, "sm3": hex}."""
    return {"sha256": hashlib.sha256(data).hexdigest(), "sm3": sm3_hex(data)}


# ---- SM2 -----------------------------------------------------------------------------------------
def _crypt(private_hex: str, public_hex: str) -> _gm_sm2.CryptSM2:
    c = _gm_sm2.CryptSM2(private_key=private_hex, public_key="00" * 64)
    # Set directly: CryptSM2.__init__ strips a leading "04" with str.lstrip, which also eats the leading
    # 0 and 4 digits of an x coordinate that starts with them.
    c.public_key = public_hex
    return c


def sm2_public_from_private(private_hex: str) -> str:
    """Uncompressed public point x||y (128 hex digits, without the 04 prefix)."""
    d = int(private_hex, 16)
    if not 1 <= d <= _N - 2:
        raise SignatureError("SM2 private key out of range [1, n-2]: replace the secret exchange_sm2_private_key")
    return _crypt(private_hex, "00" * 64)._kg(d, _CURVE["g"])


def sm2_z(public_hex: str, signer_id: str) -> bytes:
    """Z_A = SM3(ENTL || ID || a || b || xG || yG || xA || yA) of GM/T 0003.2 §5.5."""
    uid = signer_id.encode("utf-8")
    if len(uid) * 8 >= 1 << 16:
        raise SignatureError("signer ID longer than 8,191 bytes")
    blob = (len(uid) * 8).to_bytes(2, "big") + uid + bytes.fromhex(_CURVE["a"] + _CURVE["b"] + _CURVE["g"] + public_hex)
    return sm3(blob)


def _der_int(v: int) -> bytes:
    body = v.to_bytes((v.bit_length() + 8) // 8, "big")  # one spare bit keeps the sign bit clear
    return b"\x02" + bytes([len(body)]) + body


def der_signature(r: int, s: int) -> bytes:
    body = _der_int(r) + _der_int(s)
    return b"\x30" + bytes([len(body)]) + body


def parse_der_signature(der: bytes) -> tuple[int, int]:
    """(r, s) of a DER SM2 signature; strict: the exact encoding this module writes."""
    try:
        if der[0] != 0x30 or der[1] != len(der) - 2:
            raise IndexError
        pos, out = 2, []
        for _ in range(2):
            if der[pos] != 0x02:
                raise IndexError
            ln = der[pos + 1]
            body = der[pos + 2:pos + 2 + ln]
            if len(body) != ln or ln == 0 or body[0] & 0x80 or (ln > 1 and body[0] == 0 and not body[1] & 0x80):
                raise IndexError
            out.append(int.from_bytes(body, "big"))
            pos += 2 + ln
        if pos != len(der):
            raise IndexError
    except IndexError:
        raise SignatureError("the signature file is not a DER SEQUENCE of two INTEGERs (GM/T 0009)") from None
    return out[0], out[1]


def sm2_sign(private_hex: str, message: bytes, signer_id: str = DEFAULT_SIGNER_ID) -> bytes:
    public_hex = sm2_public_from_private(private_hex)
    e = sm3(sm2_z(public_hex, signer_id) + message)
    crypt = _crypt(private_hex, public_hex)
    while True:
        k = _secrets.randbelow(_N - 1) + 1  # K uniform in [1, n-1], from the OS's CSPRNG
        sig = crypt.sign(e, f"{k:064x}")
        if sig:  # None in the (negligible) cases r = 0, r + k = n or s = 0: draw another K
            return der_signature(int(sig[:64], 16), int(sig[64:], 16))


def sm2_verify(public_hex: str, message: bytes, signature: bytes, signer_id: str = DEFAULT_SIGNER_ID) -> bool:
    r, s = parse_der_signature(signature)
    if not (1 <= r < _N and 1 <= s < _N):
        return False
    e = sm3(sm2_z(public_hex, signer_id) + message)
    return _crypt("00", public_hex).verify(f"{r:064x}{s:064x}", e) is True


# ---- public keys -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PublicKey:
    algorithm: str   # sm2 | ed25519
    raw: bytes       # SM2: 04||x||y (65 bytes); Ed25519: 32 bytes

    @property
    def spki_der(self) -> bytes:
        return (_SM2_SPKI_PREFIX if self.algorithm == "sm2" else _ED25519_SPKI_PREFIX) + self.raw

    @property
    def fingerprint(self) -> str:
        return "sm3:" + sm3_hex(self.spki_der)

    def to_pem(self) -> str:
        b64 = base64.b64encode(self.spki_der).decode()
        lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
        return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"

    def verify(self, message: bytes, signature: bytes, signer_id: str = DEFAULT_SIGNER_ID) -> bool:
        if self.algorithm == "sm2":
            return sm2_verify(self.raw[1:].hex(), message, signature, signer_id)
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
            return True
        except InvalidSignature:
            return False


def load_public_key(pem: str | bytes) -> PublicKey:
    text = pem.decode("ascii", "replace") if isinstance(pem, bytes) else pem
    lines = [ln.strip() for ln in text.strip().splitlines()]
    if not lines or lines[0] != "-----BEGIN PUBLIC KEY-----" or lines[-1] != "-----END PUBLIC KEY-----":
        raise SignatureError("the public key is not a PEM 'PUBLIC KEY' block (SubjectPublicKeyInfo)")
    try:
        der = base64.b64decode("".join(lines[1:-1]), validate=True)
    except ValueError:
        raise SignatureError("the public key's PEM body is not base64") from None
    if der.startswith(_SM2_SPKI_PREFIX) and len(der) == len(_SM2_SPKI_PREFIX) + 65 and der[len(_SM2_SPKI_PREFIX)] == 4:
        return PublicKey("sm2", der[len(_SM2_SPKI_PREFIX):])
    if der.startswith(_ED25519_SPKI_PREFIX) and len(der) == len(_ED25519_SPKI_PREFIX) + 32:
        return PublicKey("ed25519", der[len(_ED25519_SPKI_PREFIX):])
    raise SignatureError("the public key is neither an SM2 (curve 1.2.156.10197.1.301) nor an Ed25519 key")


# ---- the sender's key pairs (from the settings' secret source) -----------------------------------------
SECRET_NAMES = {"sm2": "exchange_sm2_private_key", "ed25519": "exchange_ed25519_private_key"}


@dataclass(frozen=True)
class SigningKey:
    algorithm: str
    private_hex: str

    @property
    def public(self) -> PublicKey:
        if self.algorithm == "sm2":
            return PublicKey("sm2", bytes.fromhex("04" + sm2_public_from_private(self.private_hex)))
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(self.private_hex))
        return PublicKey("ed25519", key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    def sign(self, message: bytes, signer_id: str = DEFAULT_SIGNER_ID) -> bytes:
        if self.algorithm == "sm2":
            return sm2_sign(self.private_hex, message, signer_id)
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(self.private_hex)).sign(message)


def signing_key(settings, algorithm: str) -> SigningKey:
    """The sender's key pair for ``algorithm`` from the secret source.

    Both private keys are 32 random bytes (hex), which is exactly what ``Settings.secret`` generates into
    var/secrets (mode 0600) on first use with the file source; with the env source they are read from
    SMARTREHAB_SECRET_EXCHANGE_SM2_PRIVATE_KEY / ..._ED25519_PRIVATE_KEY.
    """
    if algorithm not in SECRET_NAMES:
        raise SignatureError(f"unknown signature algorithm '{algorithm}' (sm2 or ed25519)")
    value = settings.secret(SECRET_NAMES[algorithm]).strip().lower()
    if len(value) != 64 or any(ch not in "0123456789abcdef" for ch in value):
        raise SignatureError(f"secret {SECRET_NAMES[algorithm]} must be 64 hex digits (a 32-byte private key)")
    key = SigningKey(algorithm, value)
    key.public  # noqa: B018 - raises for an SM2 scalar out of range
    return key
