"""evonorm analysis."""
