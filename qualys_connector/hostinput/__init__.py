"""The FMC host input protocol: the command language, TLV framing, batching, and a TLS client.

``codec`` (encode/decode a command line), ``builders`` (the commands the connector writes),
``fitting`` (shorten a line to MAX_SIZE), ``replies`` (the server's answer), ``tlv`` and
``batching`` are pure (no I/O) and shared by the CSV writer, the client and the FMC emulator;
``lineblocks`` reads a file a block of whole lines at a time (for the checks and batching in C);
``client`` is the only module here that touches a socket.
"""
from .batching import Batcher, LineTooLongError
from .builders import add_host, add_scan_result, scan_flush, set_domain, set_os, set_source
from .client import DEFAULT_PORT, HostInputClient, ServerReply
from .codec import (BUGTRAQ_HEADER, CVE_HEADER, Command, CommandSyntaxError, decode, encode, encode_args,
                    encode_line, id_list_field)
from .fitting import fit, fit_line
from .replies import Reply, format_reply, parse_reply
from .tlv import Frame, FrameDecoder, FramingError

__all__ = ["BUGTRAQ_HEADER", "Batcher", "CVE_HEADER", "Command", "CommandSyntaxError", "DEFAULT_PORT", "Frame",
           "FrameDecoder", "FramingError", "HostInputClient", "LineTooLongError", "Reply", "ServerReply",
           "add_host", "add_scan_result", "decode", "encode", "encode_args", "encode_line", "fit", "fit_line",
           "format_reply", "id_list_field", "parse_reply", "scan_flush", "set_domain", "set_os", "set_source"]
