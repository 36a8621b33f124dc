"""Execution: fills of child orders against snapshots, taking and resting, with venue costs."""
