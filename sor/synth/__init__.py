"""Synthetic data: a seeded multi-venue order book written as Databento MBP CSV."""
