# C types for wsfast.asyncio._websocket_c, the Cython build of _websocket_py.py (the .py stays
# the one source; setup.py copies it next to this file at build time and this file only adds
# types). Keep the attributes in step with _WebSocketCore.__slots__ in _websocket_py.py:
# tests/test_asyncio_build.py checks that they match.
#
# The attributes read from outside the class (broadcast, the subclasses, tests) are readonly;
# none is written from outside. The cdef methods are internal C calls: the read path
# (buffer_updated -> _pump -> _dispatch_events -> _push or _deliver -> _flush) runs without a
# Python call per message. What subclasses override or call (_connection_ended, the hooks
# _on_request, _on_accepted, _on_refused and _on_other_event, _process, _dispatch,
# _start_keepalive) and what the loop calls back stay def; _on_ping, _on_pong, _on_violation
# and _on_closed are cdef. A subclass's override of a cdef method would be skipped by the
# compiled build: tests/test_asyncio_build.py checks that none has one.
#
# _conn is the compiled Connection (cimported): receive_data, events and chunks_to_send, the
# calls of every read, and _send_text and _send_binary, those of every send, are C calls
# (cpdef in _connection_c.pxd) rather than lookups by name
# (the override of a Python subclass of the connection still runs: cpdef looks up by name on
# such a class only).
# __init__ refuses any other object with a TypeError, as the Python build does. Until it has
# run (a subclass whose __init__ skips it), _conn is None: the nonecheck directive (the
# source's first line) makes those C calls raise AttributeError then, not crash.
#
# The module is declared free-threading compatible (it must not turn the GIL back on) without
# critical sections: a WebSocket, like every asyncio object, is used from its loop's thread
# only (calls from other threads go through loop.call_soon_threadsafe).

cimport cython

from wsfast._connection_c cimport Connection as _CConnection


cdef Py_ssize_t _BIG_WRITE

cdef class _Wait:
    cdef object _loop
    cdef bint _done
    cdef object _cancel_message
    cdef object _fn
    cdef object _context
    cdef list _more
    cdef public object _asyncio_future_blocking

    cdef _finish(self, bint now)
    cdef _run_callback(self, fn, context, bint now)

cdef _resume_later(object ready, _Wait waiter)

@cython.locals(waiter=_Wait, i=Py_ssize_t)
cpdef _resume_batch(list woken)


cdef class _WebSocketCore:
    cdef readonly _CConnection _conn
    cdef readonly object _loop
    cdef object _rbuf
    cdef object _on_message
    cdef readonly bint _dispatching
    cdef readonly object _transport
    cdef readonly object _messages
    cdef Py_ssize_t _max_queue
    cdef bint _queue_full
    cdef readonly bint _reading_paused
    cdef object _backlog_step
    cdef bint _peer_ended
    cdef bint _lost
    cdef readonly _Wait _waiter
    cdef bint _reading
    cdef readonly _Wait _woken
    cdef object _loop_ready
    cdef object _write_limit
    cdef bint _writing_paused
    cdef object _drain_waiter
    cdef object _latest_ping
    cdef dict _pings
    cdef object _ping_interval
    cdef object _ping_timeout
    cdef object _close_timeout
    cdef object _keepalive_timer
    cdef object _pong_timer
    cdef object _fail_timer
    cdef object _closing_timer
    cdef readonly object _closed
    cdef object _close_code
    cdef str _close_reason
    cdef object _close_cause
    cdef readonly object id

    cdef _take(self)
    cdef _message_waiter(self)
    cdef _pump(self)
    cdef _dispatch_events(self, list events)
    cdef _push(self, message)
    cdef _wake(self, _Wait waiter)
    cdef _deliver(self, message)
    cdef _write_message(self, message)
    @cython.locals(chunks=list, small=list)
    cdef _flush(self)
    cdef _close_transport(self)
    cdef _start_closing(self, code, reason)
    cdef _start_closing_timer(self)
    cdef _pause_reading(self)
    cdef _resume_reading(self)
    cdef bint _may_read(self) except -1
    cdef _resume_reading_if_allowed(self)
    cdef _wake_writer(self)
    cdef _not_open_error(self)
    cdef _closed_error(self)
    cdef _on_ping(self, payload)
    cdef _on_pong(self, payload)
    cdef _on_violation(self, event)
    cdef _on_closed(self, code, reason)
    cdef _cancel_timers(self)
