"""The host input client: mutual TLS to the FMC, then VERSION → MAX_SIZE → DATA/reply.

This is the only module of the host input side that touches sockets. Socket and TLS
errors are translated here, once, into the FMC branch of ``errors.py``.
"""
from __future__ import annotations

import ipaddress
import socket
import ssl
from dataclasses import dataclass
from typing import Callable

from ..errors import FMCCertificateRejected, FMCCertificateUntrusted, FMCConnectError, FMCProtocolError
from . import tlv
from .replies import Reply, parse_reply

DEFAULT_PORT = 8307

_REJECTED_HINT = ("the FMC did not accept the client certificate: use the .pkcs12 file the FMC "
                  "issued for this host (System > Integrations > Host Input Client) and check it "
                  "was not deleted there")


@dataclass(frozen=True)
class ServerReply:
    """One reply to a DATA message: the frame type and what the server's text says."""

    frame_type: int
    reply: Reply

    @property
    def ok(self) -> bool:
        return self.frame_type != tlv.ERROR and self.reply.ok

    @property
    def error_lines(self) -> tuple[str, ...]:
        if self.frame_type == tlv.ERROR:
            return self.reply.errors + (("the FMC answered with an ERROR frame",) if not self.reply.errors else ())
        if self.reply.processed is None and not self.reply.errors:
            return ("the FMC's reply did not say 'Done processing N commands.'",)
        return self.reply.errors


class HostInputClient:
    """One connection to the FMC host input service. Use as a context manager."""

    def __init__(self, server: str, port: int, context: ssl.SSLContext, *, ipv6: bool = False,
                 timeout: float = 120.0):
        self.server, self.port, self.context = server, port, context
        # An IPv6 literal needs no -ipv6 (the Perl SDK insisted on it); -ipv6 still picks IPv6 for a name.
        self.family = socket.AF_INET6 if ipv6 or _ip_version(server) == 6 else socket.AF_INET
        self.timeout = timeout
        self.max_size: int | None = None
        self._sock: ssl.SSLSocket | None = None
        self._decoder = tlv.FrameDecoder(strict=False)   # any reply type is read as a reply [?]
        self._frames: list[tlv.Frame] = []

    @property
    def where(self) -> str:
        host = f"[{self.server}]" if ":" in self.server else self.server
        return f"{host}:{self.port}"

    def __enter__(self) -> "HostInputClient":
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ connection
    def connect(self) -> int:
        """Open TCP + TLS, say VERSION 1, learn MAX_SIZE; returns MAX_SIZE."""
        family_name = "IPv6" if self.family == socket.AF_INET6 else "IPv4"
        try:
            infos = socket.getaddrinfo(self.server, self.port, self.family, socket.SOCK_STREAM)
        except socket.gaierror as exc:
            if self.family == socket.AF_INET6 and _ip_version(self.server) == 4:
                hint = "this is an IPv4 address: drop -ipv6"
            else:
                hint = "check -server (a name must resolve on this host)"
            raise FMCConnectError(f"cannot resolve FMC address {self.server} ({family_name}): {exc.strerror}",
                                  hint) from None
        last: OSError | None = None
        raw = None
        for family, kind, proto, _, address in infos:
            raw = socket.socket(family, kind, proto)
            raw.settimeout(self.timeout)
            try:
                raw.connect(address)
                break
            except OSError as exc:
                raw.close()
                raw, last = None, exc
        if raw is None:
            reason = last.strerror if last is not None and last.strerror else str(last)
            raise FMCConnectError(f"cannot connect to the FMC at {self.where}: {reason}",
                                  f"check -server/-port, that port {self.port} is open to this host and "
                                  "that the FMC has a host input client for it")
        # Stop-and-wait over Nagle + delayed ACK stalls ~40 ms per message (docs/host-input.md §2.1b).
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self._sock = self.context.wrap_socket(raw, server_hostname=None)
        except ssl.SSLCertVerificationError as exc:
            raw.close()
            raise FMCCertificateUntrusted(f"the FMC's certificate at {self.where} is not trusted: "
                                          f"{exc.verify_message or exc.reason}") from None
        except (ssl.SSLError, ConnectionError) as exc:
            raw.close()
            raise self._handshake_error(str(getattr(exc, "reason", None) or exc)) from None
        except OSError as exc:
            raw.close()
            raise self._handshake_error(str(exc)) from None
        try:
            self._send(tlv.version_frame())
            frame = self._read_frame(during="the handshake")
        except FMCProtocolError as exc:
            # With TLS 1.3 a refused client certificate only shows on the first read.
            raise self._handshake_error(exc.message, after_tls=True) from None
        if frame.type == tlv.ERROR:
            text = frame.payload.decode("utf-8", "replace").strip()
            raise FMCProtocolError(f"the FMC refused protocol version 1: {text or 'ERROR frame'}")
        if frame.type != tlv.MAX_SIZE:
            raise FMCProtocolError(f"expected MAX_SIZE from the FMC, got {frame.type_name}")
        try:
            self.max_size = frame.uint32()
        except tlv.FramingError as exc:
            raise FMCProtocolError(f"bad MAX_SIZE from the FMC: {exc}") from None
        if self.max_size < 64:   # our own floor: no header line plus a command fits in less
            raise FMCProtocolError(f"the FMC announced an unusable MAX_SIZE of {self.max_size} bytes")
        return self.max_size

    def _handshake_error(self, reason: str, after_tls: bool = False) -> FMCConnectError:
        """Tell a refused client certificate (a person must act) from a port that is no TLS
        service and from other failures; the reason text is all ssl gives us."""
        upper = reason.upper().replace(" ", "_")
        if any(mark in upper for mark in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG",
                                          "HTTP_REQUEST", "UNKNOWN_PROTOCOL")):
            return FMCConnectError(f"the service at {self.where} does not speak TLS ({reason})",
                                   "check -port: the FMC's host input service listens on 8307")
        if any(mark in upper for mark in ("CERTIFICATE", "UNKNOWN_CA", "ACCESS_DENIED", "HANDSHAKE_FAILURE",
                                          "DECRYPT_ERROR")) or (after_tls and ("CLOSED" in upper or "EOF" in upper)):
            # With TLS 1.3 the server checks our certificate after the client's side of the
            # handshake is done: a refusal shows as an alert or a bare EOF on the first exchange.
            return FMCCertificateRejected(f"the FMC at {self.where} refused the TLS handshake ({reason})",
                                          _REJECTED_HINT)
        what = "ended the connection during the handshake" if after_tls else "TLS handshake failed"
        return FMCConnectError(f"the FMC at {self.where} {what} ({reason})",
                               "check -server/-port; " + _REJECTED_HINT)

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None

    # ------------------------------------------------------------------ messages
    def send_data(self, payload: bytes, meanwhile: Callable[[], object] | None = None) -> ServerReply:
        """Send one DATA message and wait for its reply (the protocol is stop-and-wait).

        ``meanwhile`` runs once the message is written and before its reply is read: the caller
        prepares its next message while the FMC works on this one, instead of the FMC waiting
        for it afterwards. Nothing is sent before the reply arrives.
        """
        if self.max_size is not None and len(payload) > self.max_size:
            raise ValueError("DATA payload larger than MAX_SIZE")  # batching guarantees this
        self._send(tlv.data_frame(payload))
        if meanwhile is not None:
            meanwhile()
        frame = self._read_frame(during="a reply")
        return ServerReply(frame.type, parse_reply(frame.payload.decode("utf-8", "replace")))

    def _send(self, data: bytes) -> None:
        assert self._sock is not None
        try:
            self._sock.sendall(data)
        except (ssl.SSLError, OSError) as exc:
            raise FMCProtocolError(f"sending to the FMC at {self.where} failed: "
                                   f"{getattr(exc, 'strerror', None) or exc}") from None

    def _read_frame(self, during: str) -> tlv.Frame:
        assert self._sock is not None
        while not self._frames:
            try:
                chunk = self._sock.recv(65536)
            except socket.timeout:
                raise FMCProtocolError(f"the FMC at {self.where} did not answer {during} within "
                                       f"{self.timeout:.0f} s") from None
            except (ssl.SSLError, OSError) as exc:
                raise FMCProtocolError(f"the connection to the FMC broke during {during}: "
                                       f"{getattr(exc, 'reason', None) or getattr(exc, 'strerror', None) or exc}") from None
            if not chunk:
                raise FMCProtocolError(f"the FMC closed the connection during {during}")
            try:
                self._frames.extend(self._decoder.feed(chunk))
            except tlv.FramingError as exc:
                raise FMCProtocolError(f"the FMC sent malformed data: {exc}") from None
        return self._frames.pop(0)


def _ip_version(text: str) -> int | None:
    """4 or 6 for an address literal, None for a name."""
    try:
        return ipaddress.ip_address(text).version
    except ValueError:
        return None
