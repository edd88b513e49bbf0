"""The profile JSON Schema (profile.schema.json), generated from emulator.profile."""
