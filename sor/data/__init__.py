"""Data adapters: Databento CSV and DBN files to quote updates and snapshot arrays."""
