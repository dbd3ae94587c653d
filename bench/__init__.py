"""fastopt's benchmarks: ``python -m bench`` runs the performance issue's workloads."""
