"""The FMC's certificate is verified (issue: security sweep), over real TLS sockets."""
from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from conftest import CLIENT_PASSWORD, run_cli
from qualys_connector.emulators.fmc.server import FMCEmulator
from qualys_connector.errors import CertificateError
from qualys_connector.hostinput.pkcs12 import fmc_trust, load_identity


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _cert(subject, issuer, public_key, signing_key, *, ca, days=(-1, 365)):
    return (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(_now() + datetime.timedelta(days=days[0]))
            .not_valid_after(_now() + datetime.timedelta(days=days[1]))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(signing_key, hashes.SHA256()))


def _pem(obj):
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def server_files(tmp_path, name, *, ca_key=None, ca_cert=None, expired=False):
    """A server certificate for the emulator: from ``ca`` (default: a fresh CA of its own)."""
    if ca_key is None:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _cert(f"{name} CA", f"{name} CA", ca_key.public_key(), ca_key, ca=True, days=(-1, 3650))
    key = ec.generate_private_key(ec.SECP256R1())
    days = (-30, -1) if expired else (-1, 365)
    cert = _cert(f"{name} server", ca_cert.subject.rfc4514_string().split("=", 1)[1], key.public_key(), ca_key,
                 ca=False, days=days)
    paths = {k: tmp_path / f"{name}-{k}.pem" for k in ("ca", "cert", "key")}
    paths["ca"].write_bytes(_pem(ca_cert))
    paths["cert"].write_bytes(_pem(cert))
    paths["key"].write_bytes(_pem(key))
    return {k: str(v) for k, v in paths.items()}


def emulator_ca(pki):
    with open(pki.ca_key, "rb") as fh:
        key = serialization.load_pem_private_key(fh.read(), None)
    with open(pki.ca_cert, "rb") as fh:
        cert = x509.load_pem_x509_certificate(fh.read())
    return key, cert


def csv_source(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("SetSource,T\nAddHost,192.0.2.7\n")
    return str(path)


def send(tmp_path, fmc, pkcs12_path, *extra, env=None):
    full = {"QC_PKCS12_PASSWORD": CLIENT_PASSWORD}
    full.update(env or {})
    return run_cli("-se=127.0.0.1", f"-po={fmc.port}", f"-pk={pkcs12_path}", f"-pl={csv_source(tmp_path)}",
                   *extra, "csv", env=full)


# ---------------------------------------------------------------- what the PKCS#12 carries
def test_init_pki_puts_the_ca_into_the_client_pkcs12(pki):
    identity = load_identity(pki.client_pkcs12, CLIENT_PASSWORD)
    with open(pki.ca_cert, "rb") as fh:
        ca = x509.load_pem_x509_certificate(fh.read())
    assert ca in identity.additional
    trust = fmc_trust(identity)
    assert trust.verified and trust.warning is None and list(trust.cas) == [ca]


def test_without_a_ca_in_the_pkcs12_the_fmc_is_not_verified_and_we_say_so(tmp_path, pki):
    identity = load_identity(no_ca_pkcs12(tmp_path, pki), CLIENT_PASSWORD)
    trust = fmc_trust(identity)
    assert not trust.verified and "-fmcca=FILE" in trust.warning
    assert fmc_trust(identity, pki.ca_cert).verified
    insecure = fmc_trust(load_identity(pki.client_pkcs12, CLIENT_PASSWORD), insecure=True)
    assert not insecure.verified and "-insecure" in insecure.warning


@pytest.mark.parametrize("bad", ["/dev/null", "not-pem"])
def test_an_fmcca_that_is_not_pem_is_a_certificate_error(tmp_path, pki, bad):
    if bad == "not-pem":
        bad = str(tmp_path / "ca.txt")
        (tmp_path / "ca.txt").write_text("just some text\n")
    with pytest.raises(CertificateError) as info:
        fmc_trust(load_identity(pki.client_pkcs12, CLIENT_PASSWORD), bad)
    assert "is not a PEM file" in str(info.value)


def no_ca_pkcs12(tmp_path, pki):
    identity = load_identity(pki.client_pkcs12, CLIENT_PASSWORD)
    path = tmp_path / "no-ca.pkcs12"
    path.write_bytes(pkcs12.serialize_key_and_certificates(
        b"c", identity.key, identity.certificate, None,
        serialization.BestAvailableEncryption(CLIENT_PASSWORD.encode())))
    return str(path)


# ---------------------------------------------------------------- end to end
def test_the_normal_emulator_pki_is_verified_and_delivered(tmp_path, pki, lock_dir):
    with FMCEmulator(pki=pki, accept_unknown_hosts=True) as fmc:
        result = send(tmp_path, fmc, pki.client_pkcs12, "-le=3")
        assert result.returncode == 0, result.stderr
        assert fmc.netmap.has_host("192.0.2.7")
    assert "verified against the CA certificates in" in result.stderr and "not verified" not in result.stderr


@pytest.mark.parametrize("case", ["other-ca", "expired"])
def test_an_fmc_certificate_we_cannot_verify_is_refused_and_nothing_is_sent(tmp_path, pki, lock_dir, case):
    if case == "other-ca":
        files = server_files(tmp_path, "impostor")
    else:
        ca_key, ca_cert = emulator_ca(pki)
        files = server_files(tmp_path, "expired", ca_key=ca_key, ca_cert=ca_cert, expired=True)
    with FMCEmulator(ca_cert=pki.ca_cert, server_cert=files["cert"], server_key=files["key"],
                     accept_unknown_hosts=True) as fmc:
        result = send(tmp_path, fmc, pki.client_pkcs12)
        assert result.returncode == 1, result.stderr
        assert fmc.stats.data_messages == 0 and fmc.netmap.export()["hosts"] == {}
    assert "Traceback" not in result.stderr
    error = [line for line in result.stderr.splitlines() if "[ERROR]" in line]
    assert len(error) == 1 and "the FMC's certificate at 127.0.0.1" in error[0] and "is not trusted" in error[0]
    assert ("expired" if case == "expired" else "unable to get local issuer certificate") in error[0]


def test_fmcca_trusts_an_fmc_whose_ca_is_not_in_the_pkcs12(tmp_path, pki, lock_dir):
    files = server_files(tmp_path, "own")
    with FMCEmulator(ca_cert=pki.ca_cert, server_cert=files["cert"], server_key=files["key"],
                     accept_unknown_hosts=True) as fmc:
        result = send(tmp_path, fmc, pki.client_pkcs12, f"-fmcca={files['ca']}")
        assert result.returncode == 0, result.stderr
        assert fmc.netmap.has_host("192.0.2.7")
        via_env = send(tmp_path, fmc, pki.client_pkcs12, env={"QC_FMC_CA": files["ca"]})
        assert via_env.returncode == 0, via_env.stderr


def test_fmc_ca_in_qualysguard_yaml_is_used(tmp_path, pki, lock_dir):
    from qualys_connector import qgconfig
    path = tmp_path / "QualysGuard.yaml"
    path.write_text(f"report_file: r.xml\nfmc_ca: {pki.ca_cert}\n")
    (tmp_path / "r.xml").write_text("")
    path.chmod(0o600)
    assert qgconfig.load(str(path)).fmc_ca == pki.ca_cert


def test_insecure_delivers_to_any_fmc_with_a_warning(tmp_path, pki, lock_dir):
    files = server_files(tmp_path, "impostor")
    with FMCEmulator(ca_cert=pki.ca_cert, server_cert=files["cert"], server_key=files["key"],
                     accept_unknown_hosts=True) as fmc:
        result = send(tmp_path, fmc, pki.client_pkcs12, "-insecure")
        assert result.returncode == 0, result.stderr
        assert fmc.netmap.has_host("192.0.2.7")
    warnings = [line for line in result.stderr.splitlines() if "[WARNING]" in line and "not verified" in line]
    assert len(warnings) == 1 and "-insecure" in warnings[0]


def test_a_pkcs12_without_ca_delivers_with_one_warning(tmp_path, pki, lock_dir):
    with FMCEmulator(pki=pki, accept_unknown_hosts=True) as fmc:
        result = send(tmp_path, fmc, no_ca_pkcs12(tmp_path, pki))
        assert result.returncode == 0, result.stderr
        assert fmc.netmap.has_host("192.0.2.7")
    warnings = [line for line in result.stderr.splitlines() if "is not verified" in line]
    assert len(warnings) == 1 and "carries no CA certificate" in warnings[0]


def test_pkcs12_from_dev_zero_is_refused_at_once(tmp_path, lock_dir):
    result = run_cli("-se=127.0.0.1", "-po=9", "-pk=/dev/zero", f"-pl={csv_source(tmp_path)}", "csv")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "PKCS#12 file /dev/zero is larger than 1024 KiB" in result.stderr
