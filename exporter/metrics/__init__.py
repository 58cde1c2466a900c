"""The published metric families, their rendering and exposition."""
