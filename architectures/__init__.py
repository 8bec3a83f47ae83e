"""evonorm architectures."""
