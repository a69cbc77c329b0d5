"""Ray actors: data providers, the aggregator party; the MPC party lifecycle lives here.

Actors never talk to the chain and never return rows, updates or partial aggregates.
"""
