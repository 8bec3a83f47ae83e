"""evonorm evaluation."""
