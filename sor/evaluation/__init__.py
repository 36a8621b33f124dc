"""Evaluation: the router against the baselines over one parent order or a schedule, and reports."""
