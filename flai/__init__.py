"""FLAI core: settings, storage, crypto, MPC protocols and shared types; it imports nothing
above itself."""

import os

# Nothing may phone home: these machines reach only loopback (shared/STACK.md, "Network
# hygiene"). Set before ray, prefect or duckdb read them; an explicit value still wins.
for _name, _value in {
    "RAY_USAGE_STATS_ENABLED": "0",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "FLWR_TELEMETRY_ENABLED": "0",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
}.items():
    os.environ.setdefault(_name, _value)

__version__ = "0.1.0"
