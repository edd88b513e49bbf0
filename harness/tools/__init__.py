"""Tools behind the command line: emulate, demo, replay, bench, fuzz, crash test."""

import sys

# How a tool starts `cartesim` as a child process (the emulator to kill, the emulate to time):
# the interpreter running now, so the child runs this very cartesim, installed or not.
CARTESIM_ARGV = (sys.executable, "-m", "cartesim")
