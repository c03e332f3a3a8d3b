"""Small files read whole (configuration, certificates), with a size cap and a PEM check.

``-pkcs12=/dev/zero`` or a 100 MB YAML file must not make a run read for ever or fill the
memory: every such file is read with a cap, and what is over it is refused by name.
"""
from __future__ import annotations

from cryptography import x509

MAX_CONFIG_BYTES = 1 << 20      # a configuration file: a few KiB in practice
MAX_CERT_BYTES = 1 << 20        # a PKCS#12 or a PEM CA bundle (Mozilla's full bundle is ~220 KiB)


class FileTooLarge(ValueError):
    """The file is over its cap (or is an endless device like /dev/zero)."""


class NotPem(ValueError):
    """The file holds no PEM certificate."""


def read_small(path: str, limit: int) -> bytes:
    """The whole file, or FileTooLarge when it is over ``limit`` bytes; OSError as open() raises it."""
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise FileTooLarge(f"{path} is larger than {limit // 1024} KiB")
    return data


def read_pem_certificates(path: str, limit: int = MAX_CERT_BYTES) -> list[x509.Certificate]:
    """The certificates of a PEM bundle; NotPem when there is none or one is damaged."""
    data = read_small(path, limit)
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise NotPem(f"{path} is not a PEM file of CA certificates (no BEGIN CERTIFICATE block)")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise NotPem(f"{path} holds a damaged PEM certificate") from None
