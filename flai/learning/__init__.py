"""Models, local training and the aggregation strategies: algorithm only, no transport."""
