"""The FMC host input protocol: the command language, TLV framing, batching, and a TLS client.

``commands``, ``tlv`` and ``batching`` are pure (no I/O) and shared by the CSV writer, the client
and the FMC emulator; ``client`` is the only module here that touches a socket.
"""
from .batching import Batcher, LineTooLongError
from .client import DEFAULT_PORT, HostInputClient, ServerReply
from .commands import Command, CommandSyntaxError, Reply, decode, encode, encode_line, parse_reply
from .tlv import Frame, FrameDecoder, FramingError

__all__ = ["Batcher", "Command", "CommandSyntaxError", "DEFAULT_PORT", "Frame", "FrameDecoder", "FramingError",
           "HostInputClient", "LineTooLongError", "Reply", "ServerReply", "decode", "encode", "encode_line",
           "parse_reply"]
