"""The sweep: Optuna search over the router parameters on Ray workers, and its report."""
