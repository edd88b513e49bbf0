"""Live card control: card settings, the in-process control, the socket server and its client."""
