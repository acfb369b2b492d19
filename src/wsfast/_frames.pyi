from typing_extensions import Buffer

from .codes import Opcode

_MAX_BUFFERED: int

class FrameHeader:
    @property
    def fin(self) -> bool: ...
    @property
    def rsv1(self) -> bool: ...
    @property
    def rsv2(self) -> bool: ...
    @property
    def rsv3(self) -> bool: ...
    @property
    def opcode(self) -> Opcode: ...
    @property
    def masked(self) -> bool: ...
    @property
    def mask(self) -> bytes | None: ...
    @property
    def length(self) -> int: ...
    @property
    def size(self) -> int: ...
    def __init__(
        self,
        fin: bool,
        rsv1: bool,
        rsv2: bool,
        rsv3: bool,
        opcode: Opcode,
        masked: bool,
        mask: bytes | None,
        length: int,
        size: int,
    ) -> None: ...

class Frame:
    @property
    def opcode(self) -> Opcode: ...
    @property
    def fin(self) -> bool: ...
    @property
    def rsv1(self) -> bool: ...
    @property
    def rsv2(self) -> bool: ...
    @property
    def rsv3(self) -> bool: ...
    @property
    def payload(self) -> bytes: ...
    def __init__(
        self,
        opcode: int,
        payload: Buffer,
        fin: bool = True,
        rsv1: bool = False,
        rsv2: bool = False,
        rsv3: bool = False,
    ) -> None: ...

def parse_header(data: Buffer, offset: int = 0) -> FrameHeader | None: ...
def build_header(
    opcode: int,
    length: int,
    *,
    fin: bool = True,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
    mask: Buffer | None = None,
) -> bytes: ...
def build_frame(
    opcode: int,
    payload: Buffer,
    fin: bool = True,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
    mask: Buffer | None = None,
) -> bytes: ...

class FrameParser:
    def __init__(self, *, require_mask: bool, max_frame_size: int | None = None) -> None: ...
    @property
    def require_mask(self) -> bool: ...
    @property
    def max_frame_size(self) -> int | None: ...
    @property
    def pending(self) -> FrameHeader | None: ...
    def pending_payload(self, start: int = 0) -> bytes: ...
    def feed(self, data: Buffer) -> list[Frame]: ...
