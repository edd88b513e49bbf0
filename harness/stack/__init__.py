"""PC/SC stacks: pcscd, network namespaces, and emulated cards put in vpcd slots."""
