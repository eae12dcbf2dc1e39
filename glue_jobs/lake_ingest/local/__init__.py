"""Laptop-only helpers: emulated AWS (moto), sample data, the demo and a stand-in for Athena."""
