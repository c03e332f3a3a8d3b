"""Client certificate and key from a PKCS#12 file, into an ``ssl.SSLContext``, never onto disk.

The Perl SDK shelled out to ``openssl pkcs12 -passin pass:<pw>`` (password visible in ``ps``)
and wrote an unencrypted ``server.key`` into the working directory. We decrypt with
``cryptography`` (modern AES files and legacy 3DES/RC2 ones alike) and hand the PEM to
OpenSSL through an anonymous memory file (``memfd_create``): ``ssl`` can only load a key from a
path, and ``/proc/self/fd/N`` is a path that has no directory entry, vanishes with the
process and never touches a disk, even if we crash.
"""
from __future__ import annotations

import glob
import os
import ssl
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from ..errors import CertificateError
from ..smallfile import MAX_CERT_BYTES, FileTooLarge, NotPem, read_pem_certificates, read_small


@dataclass(frozen=True)
class ClientIdentity:
    """What the PKCS#12 held: our certificate, its key, and any CA certificates bundled."""

    path: str
    certificate: x509.Certificate
    key: object
    additional: tuple[x509.Certificate, ...]

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()


def find_pkcs12(explicit: str | None, directory: str = ".") -> str:
    """The ``-pkcs12`` file, or the only ``*.pkcs12`` in ``directory`` (several: say which)."""
    if explicit:
        return explicit
    found = sorted(glob.glob(os.path.join(directory, "*.pkcs12")))
    if not found:
        raise CertificateError(
            f"no -pkcs12 given and no *.pkcs12 file in {os.path.abspath(directory)}",
            "download the client certificate from the FMC (System > Integrations > Host Input "
            "Client) and pass it with -pkcs12=FILE")
    if len(found) > 1:
        names = ", ".join(os.path.basename(f) for f in found)
        raise CertificateError(f"several *.pkcs12 files in {os.path.abspath(directory)}: {names}",
                               "say which one with -pkcs12=FILE")
    return found[0]


def load_identity(path: str, password: str | None) -> ClientIdentity:
    """Decrypt the PKCS#12 file; every failure is one CertificateError line without the password."""
    try:
        data = read_small(path, MAX_CERT_BYTES)
    except FileTooLarge:
        raise CertificateError(f"PKCS#12 file {path} is larger than {MAX_CERT_BYTES // 1024} KiB",
                               "a client certificate file is a few KiB: give the .pkcs12 file the FMC issued") from None
    except IsADirectoryError:
        raise CertificateError(f"PKCS#12 file {path} is a directory", "check the -pkcs12 path") from None
    except FileNotFoundError:
        raise CertificateError(f"PKCS#12 file {path} does not exist",
                               "check the -pkcs12 path") from None
    except OSError as exc:
        raise CertificateError(f"cannot read PKCS#12 file {path}: {exc.strerror}",
                               "check the file's permissions") from None
    if data.lstrip().startswith(b"-----BEGIN"):
        raise CertificateError(f"{path} is a PEM file, not a PKCS#12 file",
                               "give the .pkcs12 file the FMC issued for this host") from None
    if data and data[0] != 0x30:      # PKCS#12 is DER: it starts with a SEQUENCE
        raise CertificateError(f"{path} is not a PKCS#12 file",
                               "give the .pkcs12 file the FMC issued for this host") from None
    secret = password.encode("utf-8") if password else None
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, secret)
    except ValueError as exc:
        text = str(exc).lower()
        if not data or "could not deserialize" in text or "invalid password" in text or "mac" in text:
            if password:
                hint = "the password is wrong or the file is damaged: check -password / QC_PKCS12_PASSWORD (or _FILE)"
            else:
                hint = ("the file is damaged or needs a password: give it with -password "
                        "or the QC_PKCS12_PASSWORD (or QC_PKCS12_PASSWORD_FILE) environment variable")
            raise CertificateError(f"cannot decrypt PKCS#12 file {path}", hint) from None
        raise CertificateError(f"PKCS#12 file {path} is not usable: {exc}") from None
    except Exception as exc:  # cryptography raises a few other types for odd files
        raise CertificateError(f"PKCS#12 file {path} is not usable: {type(exc).__name__}",
                               "re-download the client certificate from the FMC") from None
    if cert is None or key is None:
        raise CertificateError(f"PKCS#12 file {path} holds no certificate with its private key",
                               "re-download the client certificate from the FMC")
    return ClientIdentity(path, cert, key, tuple(extra or ()))


def _memfd_path(data: bytes) -> tuple[int, str]:
    fd = os.memfd_create("qc-client-identity", getattr(os, "MFD_CLOEXEC", 0))
    os.write(fd, data)
    return fd, f"/proc/self/fd/{fd}"


@dataclass(frozen=True)
class FMCTrust:
    """How the FMC's host input certificate is checked: against ``cas`` (chain and dates, not the
    host name: FMC certificates rarely name the address cron uses), or not at all."""

    cas: tuple[x509.Certificate, ...]
    source: str                 # "-fmcca FILE", "the PKCS#12 file", or "" when not verified
    warning: str | None = None  # said once per run when the FMC is not verified

    @property
    def verified(self) -> bool:
        return bool(self.cas)


def fmc_trust(identity: ClientIdentity, fmc_ca: str | None = None, *, insecure: bool = False) -> FMCTrust:
    """``-insecure`` → not verified (warned); ``-fmcca`` / ``fmc_ca`` → its CAs; else the CA
    certificates inside the PKCS#12; none there → not verified, with a warning saying how to fix it."""
    if insecure:
        return FMCTrust((), "", "-insecure: the FMC's certificate is not verified; anyone on the path "
                                "can pose as the FMC and read the vulnerability data")
    if fmc_ca:
        try:
            cas = read_pem_certificates(fmc_ca)
        except FileNotFoundError:
            raise CertificateError(f"-fmcca file {fmc_ca} does not exist", "check the -fmcca / QC_FMC_CA path") from None
        except IsADirectoryError:
            raise CertificateError(f"-fmcca file {fmc_ca} is a directory, not a PEM file") from None
        except OSError as exc:
            raise CertificateError(f"cannot read -fmcca file {fmc_ca}: {exc.strerror}") from None
        except (FileTooLarge, NotPem) as exc:
            raise CertificateError(f"-fmcca: {exc}", "give the CA certificate of the FMC in PEM form") from None
        return FMCTrust(tuple(cas), f"-fmcca {fmc_ca}")
    cas = tuple(c for c in identity.additional if _is_ca(c))
    if cas:
        return FMCTrust(cas, f"the CA certificates in {identity.path}")
    return FMCTrust((), "", f"{identity.path} carries no CA certificate, so the FMC's certificate is not "
                            "verified; give the FMC's CA with -fmcca=FILE (or fmc_ca in QualysGuard.yaml), "
                            "or say -insecure to silence this")


_said: set[str] = set()


def report_trust(trust: FMCTrust, log) -> None:
    """Log how the FMC is checked: the warning once per process (process-multiple runs many jobs)."""
    if trust.warning:
        if trust.warning not in _said:
            _said.add(trust.warning)
            log.warning("%s", trust.warning)
    else:
        log.debug("the FMC's certificate is verified against %s", trust.source)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return cert.issuer == cert.subject       # an old self-signed root without extensions


def client_context(identity: ClientIdentity, trust: FMCTrust | None = None) -> ssl.SSLContext:
    """A TLS client context presenting ``identity`` and checking the FMC as ``trust`` says.

    The Perl SDK never verified the FMC (``SSL_verify_mode 0``). We verify its chain and dates
    against the CA certificates given (``-fmcca``) or bundled in the PKCS#12; the host name is
    not checked. ``trust=None`` means not verified (tests and the emulators' own tools).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # Which TLS versions a real FMC offers is undocumented (docs/host-input.md §2.2 [?]); the SDK left it to
    # OpenSSL, which negotiated 1.3 or 1.2. We refuse anything older than 1.2 on purpose.
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    if trust is not None and trust.verified:
        context.load_verify_locations(cadata="".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii")
                                                     for c in trust.cas))
        context.verify_mode = ssl.CERT_REQUIRED
    else:
        context.verify_mode = ssl.CERT_NONE
    pem = identity.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
    pem += identity.certificate.public_bytes(serialization.Encoding.PEM)
    for extra in identity.additional:
        pem += extra.public_bytes(serialization.Encoding.PEM)
    fd, path = _memfd_path(pem)
    try:
        context.load_cert_chain(path)
    except ssl.SSLError as exc:
        raise CertificateError(f"OpenSSL refused the certificate from {identity.path}: {exc.reason}",
                               "re-download the client certificate from the FMC") from None
    finally:
        os.close(fd)
        del pem
    return context
