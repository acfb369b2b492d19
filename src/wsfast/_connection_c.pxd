# C types for wsfast._connection_c, the Cython build of _connection_py.py (the aiohttp reader
# pattern: the .py stays the one source; setup.py copies it next to this file at build time
# and this file only adds types). Keep it in step with the __slots__ of each class in
# _connection_py.py: tests/test_connection.py checks that they match.
#
# receive_data reads the parser's frames at C level (as _Frame), so the compiled connection
# needs the compiled kernels; wsfast.connection only picks it when they are in use.

cimport cython

from wsfast._frames cimport Frame as _Frame

# Module constants the hot paths compare against or call: C variables, not dict lookups.
cdef object _CONT, _TEXT, _BINARY, _CLOSE, _PING, _PONG
cdef object _CONNECTING, _OPEN, _CLOSING, _CLOSED
cdef object _new, _set_text, _set_text_bytes, _set_binary


cdef class Connection:
    cdef bint _client
    cdef object _state
    cdef list _events
    cdef list _out
    cdef bint _should_close
    cdef bint _eof
    cdef bint _auto_pong
    cdef bint _decode_text
    cdef object _max_message_size
    cdef object _max_frame_size
    cdef Py_ssize_t _max_head_size
    cdef Py_ssize_t _max_header_lines
    cdef object _parser
    cdef object _feed
    cdef list _extensions
    cdef object _subprotocol
    cdef object _msg_op
    cdef bint _msg_ext
    cdef list _msg_parts
    cdef Py_ssize_t _msg_size
    cdef object _validator
    cdef object _tracked
    cdef Py_ssize_t _validated
    cdef object _send_op
    cdef bint _plain_send
    cdef bint _shortcuts
    cdef list _keys
    cdef object _close_code
    cdef str _close_reason
    cdef bint _defer_failure
    cdef object _failing
    cdef Py_ssize_t _inflated
    cdef object _backlog
    cdef bint _bare
    # Unused compiled (Cython's critical section is the lock); see wsfast._nocython.
    cdef object _lock

    # cpdef: the compiled asyncio shell (asyncio/_websocket_c.pxd) makes the calls of every
    # read in C; a Python subclass's override still runs (looked up on such a class only), but
    # events() and chunks_to_send() must then return a list.
    @cython.locals(frame=_Frame, frames=list, skip=Py_ssize_t, shortcut=bint)
    cpdef receive_data(self, data)
    cpdef list events(self)
    cpdef list chunks_to_send(self)
    # The questions of every read and send (the properties state is OPEN, failing,
    # backlogged, should_close_transport), asked by the compiled shell in C.
    cpdef bint _is_open(self) except -1
    cpdef bint _is_failing(self) except -1
    cpdef bint _is_backlogged(self) except -1
    cpdef bint _closes_transport(self) except -1
    # send_text and send_binary of a whole message, the calls of every send of the shell.
    cpdef _send_text(self, data)
    cpdef _send_binary(self, data)

    # The rules and the one frame writer, called at C level (see _connection_py.py).
    cdef bint _handle_frame(self, object frame, Py_ssize_t skip) except -1
    cdef inline bint _plain(self, object op, bint rsv) noexcept
    cdef bint _check_start(self, object op, bint rsv, Py_ssize_t length) except -1
    cdef bint _check_rsv(self, bint unclaimed) except -1
    cdef bint _check_size(self, object op, Py_ssize_t length) except -1
    cdef bint _check_text(self, object chunk) except -1
    cdef bint _end_text(self) except -1
    cdef bint _deliver(self, object op, bytes payload, bint checked) except -1
    cdef bint _refuse_text(self, bytes payload) except -1
    cdef bint _can_send_plain(self) except -1
    # broadcast() reads broadcast_key of every connection: its body is a C call.
    cdef _broadcast_key(self)
    cdef bytes _mask_key(self)
    cdef _send_frame(self, object op, object payload, bint fin)
    cdef _write_frame(self, object op, object payload, bint fin, bint rsv1, bint rsv2,
                      bint rsv3)


cdef class ServerConnection(Connection):
    cdef object _reader
    cdef object _request
    cdef bint _plain_http
    cdef object _http_request
    cdef list _early
    cdef Py_ssize_t _early_size
    cdef tuple _subprotocols
    cdef object _select
    cdef tuple _extension_factories
    cdef object _origins


cdef class ClientConnection(Connection):
    cdef str _key
    cdef tuple _offered
    cdef tuple _extension_factories
    cdef object _reader
    cdef object _response
    cdef bytearray _body
    cdef object _body_need
