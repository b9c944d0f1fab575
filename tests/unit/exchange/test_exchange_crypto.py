"""SM3, SM2 and Ed25519 of the exchange packages, checked against published vectors and independent implementations
(gmssl's own SM2 verification, the OpenSSL command line)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import pytest

from smartrehab.exchange import crypto

MESSAGE = b"e3b0c442  bag-info.txt\n"


def test_sm3_matches_the_gb_t_32905_vectors():
    assert crypto.sm3_hex(b"abc") == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert crypto.sm3_hex(b"abcd" * 16) == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
    assert crypto.file_digests(b"abc")["sha256"] == hashlib.sha256(b"abc").hexdigest()


def test_sm2_sign_verify_and_rejections(settings):
    key = crypto.signing_key(settings, "sm2")
    sig = key.sign(MESSAGE)
    assert key.public.verify(MESSAGE, sig)
    assert not key.public.verify(MESSAGE + b"x", sig)
    assert not key.public.verify(MESSAGE, sig, signer_id="another-id")
    assert key.sign(MESSAGE) != sig  # a fresh random K for every signature
    other = crypto.SigningKey("sm2", "11" * 32).public
    assert not other.verify(MESSAGE, sig)
    with pytest.raises(crypto.SignatureError, match="DER"):
        key.public.verify(MESSAGE, sig + b"\x00")


def test_sm2_signature_verifies_with_gmssls_own_default_id_verification(settings):
    """gmssl's verify_with_sm3 computes Z with the default ID itself: an independent check of our Z and e."""
    from gmssl import sm2

    key = crypto.signing_key(settings, "sm2")
    r, s = crypto.parse_der_signature(key.sign(MESSAGE))
    pub_hex = key.public.raw[1:].hex()
    gm = sm2.CryptSM2(private_key="", public_key=pub_hex)
    gm.public_key = pub_hex
    assert gm.verify_with_sm3(f"{r:064x}{s:064x}", MESSAGE)


@pytest.mark.parametrize("signer_id", [crypto.DEFAULT_SIGNER_ID, "SMARTREHAB@BUREAU"])
def test_sm2_signature_and_public_key_interoperate_with_openssl(settings, tmp_path, signer_id):
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl command line")
    key = crypto.signing_key(settings, "sm2")
    (tmp_path / "pub.pem").write_text(key.public.to_pem())
    (tmp_path / "msg").write_bytes(MESSAGE)
    (tmp_path / "sig").write_bytes(key.sign(MESSAGE, signer_id))
    cmd = [openssl, "pkeyutl", "-verify", "-pubin", "-inkey", str(tmp_path / "pub.pem"), "-rawin", "-digest", "sm3",
           "-in", str(tmp_path / "msg"), "-sigfile", str(tmp_path / "sig"), "-pkeyopt", f"distid:{signer_id}"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if "unknown" in res.stderr.lower() and "sm2" in res.stderr.lower():
        pytest.skip(f"this OpenSSL has no SM2: {res.stderr}")
    assert res.returncode == 0 and "Signature Verified Successfully" in res.stdout, res.stdout + res.stderr
    (tmp_path / "msg").write_bytes(MESSAGE + b"!")
    assert subprocess.run(cmd, capture_output=True).returncode != 0
    # and OpenSSL's own SM2 signature verifies with ours
    (tmp_path / "k.pem").write_bytes(subprocess.run(
        [openssl, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2"], capture_output=True,
        check=True).stdout)
    pem = subprocess.run([openssl, "pkey", "-in", str(tmp_path / "k.pem"), "-pubout"], capture_output=True,
                         check=True, text=True).stdout
    (tmp_path / "msg").write_bytes(MESSAGE)
    sig = subprocess.run([openssl, "pkeyutl", "-sign", "-inkey", str(tmp_path / "k.pem"), "-rawin", "-digest", "sm3",
                          "-in", str(tmp_path / "msg"), "-pkeyopt", f"distid:{signer_id}"], capture_output=True,
                         check=True).stdout
    assert crypto.load_public_key(pem).verify(MESSAGE, sig, signer_id)


def test_ed25519_is_deterministic_and_reads_back_as_pem(settings):
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    key = crypto.signing_key(settings, "ed25519")
    sig = key.sign(MESSAGE)
    assert key.sign(MESSAGE) == sig and key.public.verify(MESSAGE, sig)
    assert not key.public.verify(MESSAGE + b"x", sig)
    load_pem_public_key(key.public.to_pem().encode()).verify(sig, MESSAGE)  # raises when wrong
    assert crypto.load_public_key(key.public.to_pem()) == key.public


def test_public_keys_round_trip_and_garbage_is_refused(settings):
    pub = crypto.signing_key(settings, "sm2").public
    assert crypto.load_public_key(pub.to_pem()) == pub
    assert pub.fingerprint.startswith("sm3:") and len(pub.fingerprint) == 68
    for bad in ["", "hello", "-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----\n",
                "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"]:
        with pytest.raises(crypto.SignatureError):
            crypto.load_public_key(bad)


def test_public_point_whose_x_starts_with_04_survives(monkeypatch):
    """gmssl's constructor strips '04' with str.lstrip; a point whose x begins with 0 or 4 must still verify."""
    for n in range(1, 4000):
        priv = f"{n:064x}"
        pub = crypto.sm2_public_from_private(priv)
        if pub[0] in "04":
            break
    else:
        pytest.fail("no such key found")
    sig = crypto.sm2_sign(priv, MESSAGE)
    assert crypto.sm2_verify(pub, MESSAGE, sig)


def test_out_of_range_sm2_secret_is_refused(tmp_path):
    from exchange_support import make_settings

    s = make_settings(tmp_path)
    s.secrets_dir.mkdir(parents=True)
    (s.secrets_dir / "exchange_sm2_private_key").write_text("ff" * 32)
    with pytest.raises(crypto.SignatureError, match="out of range"):
        crypto.signing_key(s, "sm2")
    (s.secrets_dir / "exchange_sm2_private_key").write_text("xyz")
    with pytest.raises(crypto.SignatureError, match="64 hex"):
        crypto.signing_key(s, "sm2")
