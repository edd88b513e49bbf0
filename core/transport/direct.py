"""DirectTransport: a card object in this process as the card in a reader (no PC/SC).

The fast path of the tests and the CLI's default. Whatever the card raises (a removal, silence)
reaches the engine as it is; a reader that can lose and regain its card is the harness's
in-process slot (cartesim.harness.stack.slots), which hands this transport such a card.
"""

from __future__ import annotations

from cartesim.core.apdu import ApduCard
from cartesim.core.transport import Transport


class DirectTransport(Transport):
    def __init__(self, card: ApduCard) -> None:
        super().__init__()
        self.card = card

    @property
    def atr(self) -> bytes:
        return self.card.atr

    def _exchange(self, command: bytes) -> bytes:
        return self.card.process(command)

    def _power_cycle(self) -> None:
        self.card.reset()
