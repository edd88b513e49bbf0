"""The pytest plugins: emulated cards as fixtures, and scenario files as tests."""
