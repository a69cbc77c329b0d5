"""The DAGs: the order of steps, nothing else."""
