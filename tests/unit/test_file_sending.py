"""The socket object the zero-copy sender borrows from the transport never closes its
descriptor: the transport owns it."""

from __future__ import annotations

import gc
import os
import socket

from playgate.file_sending import _Borrowed


def test_a_borrowed_socket_collected_unclosed_leaves_the_descriptor_open() -> None:
    a, b = socket.socketpair()
    with a, b:
        borrowed = _Borrowed(fileno=a.fileno())
        borrowed.send(b"head ", socket.MSG_MORE)
        del borrowed
        gc.collect()
        os.fstat(a.fileno())  # still open: raises OSError (EBADF) if it was closed
        a.send(b"body")
        assert b.recv(64) == b"head body"
