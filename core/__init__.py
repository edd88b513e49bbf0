"""cartesim core engine: reads CPS and Vitale cards over any transport.

``core.apdu``, ``core.sw``, ``core.tlv`` and ``core.layout`` are leaf modules (stdlib only);
they are the one piece of code the emulator shares with the engine. Nothing in ``core``
imports the emulator: the engine sees cards only through ``core.transport``.
"""
