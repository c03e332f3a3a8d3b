"""A throwaway PKI so the whole chain can be tried in a minute: CA, FMC server cert, client PKCS#12.

A real FMC issues the client's PKCS#12 itself (System > Integrations > Host Input Client);
``fmc-emulator init-pki`` plays that part. The emulator's own server key lives on disk (it is
the emulator's, not the user's), mode 0600.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class PkiPaths:
    directory: str
    ca_cert: str
    ca_key: str
    server_cert: str
    server_key: str
    client_pkcs12: str
    untrusted_client_pkcs12: str


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "qualys-connector test PKI"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _ca(common_name: str):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(_now() - datetime.timedelta(days=1))
            .not_valid_after(_now() + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def _leaf(ca_key, ca_cert, common_name: str, *, server: bool, hosts=(), rsa_key: bool = False):
    # RSA for client certificates: legacy PKCS#12 tooling (RC2/3DES era) expects RSA keys.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if rsa_key else ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(ca_cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(_now() - datetime.timedelta(days=1))
               .not_valid_after(_now() + datetime.timedelta(days=825))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                                     else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    if hosts:
        names = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def _write(path: str, data: bytes, mode: int = 0o644) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)


def _pem(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _pkcs12_bytes(key, cert, ca_cert, password: str | None, encryption: str, name: str) -> bytes:
    if encryption == "none" or not password:
        algorithm = serialization.NoEncryption()
    elif encryption == "aes":
        algorithm = serialization.BestAvailableEncryption(password.encode())
    elif encryption == "3des":
        algorithm = (serialization.PrivateFormat.PKCS12.encryption_builder()
                     .kdf_rounds(2048).key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
                     .hmac_hash(hashes.SHA1()).build(password.encode()))
    else:
        raise ValueError(f"unknown PKCS#12 encryption {encryption!r}")
    return pkcs12.serialize_key_and_certificates(name.encode(), key, cert, [ca_cert], algorithm)


def _load_ca(directory: str):
    with open(os.path.join(directory, "ca.key"), "rb") as fh:
        key = serialization.load_pem_private_key(fh.read(), None)
    with open(os.path.join(directory, "ca.pem"), "rb") as fh:
        cert = x509.load_pem_x509_certificate(fh.read())
    return key, cert


def write_client_pkcs12(path: str, pki: "PkiPaths | str", *, password: str | None,
                        encryption: str = "aes", client_name: str = "qualys-connector") -> str:
    """A client PKCS#12 signed by the PKI's CA: ``aes`` (modern), ``3des`` or ``rc2`` (legacy), ``none``.

    cryptography cannot write RC2-40 (the cipher of old OpenSSL/FMC exports); for that one the
    ``openssl pkcs12 -export -legacy`` command is used, and a RuntimeError says when it is missing.
    """
    directory = pki.directory if isinstance(pki, PkiPaths) else pki
    ca_key, ca_cert = _load_ca(directory)
    key, cert = _leaf(ca_key, ca_cert, client_name, server=False, rsa_key=True)
    if encryption != "rc2":
        _write(path, _pkcs12_bytes(key, cert, ca_cert, password, encryption, client_name), 0o600)
        return path
    openssl = shutil.which("openssl")
    if not openssl or not password:
        raise RuntimeError("RC2 PKCS#12 files need the openssl command and a password")
    with tempfile.TemporaryDirectory() as tmp:  # test material only: a throwaway key
        key_path, cert_path = os.path.join(tmp, "k.pem"), os.path.join(tmp, "c.pem")
        _write(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()), 0o600)
        _write(cert_path, _pem(cert))
        env = dict(os.environ, QC_P12_PASS=password)
        ca_path = os.path.join(directory, "ca.pem")     # the CA goes in, as in the other encryptions
        result = subprocess.run([openssl, "pkcs12", "-export", "-legacy", "-inkey", key_path, "-in", cert_path,
                                 "-certfile", ca_path,
                                 "-certpbe", "PBE-SHA1-RC2-40", "-keypbe", "PBE-SHA1-RC2-40",
                                 "-passout", "env:QC_P12_PASS", "-out", path], capture_output=True, env=env)
        if result.returncode != 0:
            raise RuntimeError(f"openssl could not write an RC2 PKCS#12: {result.stderr.decode(errors='replace').strip()}")
    os.chmod(path, 0o600)
    return path


def init_pki(directory: str, *, client_password: str | None = None,
             hosts=("localhost", "127.0.0.1", "::1"), client_name: str = "qualys-connector") -> PkiPaths:
    """Mint CA, server certificate and client PKCS#12 (plus one from a foreign CA) into ``directory``."""
    os.makedirs(directory, exist_ok=True)
    paths = PkiPaths(directory, *(os.path.join(directory, n) for n in (
        "ca.pem", "ca.key", "server.pem", "server.key", "client.pkcs12", "untrusted-client.pkcs12")))
    ca_key, ca_cert = _ca("qualys-connector emulator CA")
    _write(paths.ca_cert, _pem(ca_cert))
    _write(paths.ca_key, ca_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()), 0o600)
    server_key, server_cert = _leaf(ca_key, ca_cert, "fmc-emulator", server=True, hosts=hosts)
    _write(paths.server_cert, _pem(server_cert))
    _write(paths.server_key, server_key.private_bytes(serialization.Encoding.PEM,
                                                      serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()), 0o600)
    write_client_pkcs12(paths.client_pkcs12, directory, password=client_password,
                        encryption="aes" if client_password else "none", client_name=client_name)
    other_key, other_ca = _ca("some other CA")
    key, cert = _leaf(other_key, other_ca, client_name, server=False)
    _write(paths.untrusted_client_pkcs12,
           _pkcs12_bytes(key, cert, other_ca, client_password, "aes" if client_password else "none", client_name), 0o600)
    return paths
