"""Register-level models of the supported accelerometers (test doubles at the hardware boundary)."""
