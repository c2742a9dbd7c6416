"""Posts written by users."""
