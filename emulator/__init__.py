"""cartesim emulator: a software CPS / Carte Vitale card OS driven by YAML profiles.

It imports nothing from ``core`` but the leaf modules ``core.apdu``, ``core.sw``, ``core.tlv``,
``core.layout`` and ``core.atr`` (stdlib only), and nothing from ``harness``.
"""
