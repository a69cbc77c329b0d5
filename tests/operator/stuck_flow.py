"""A flow run that holds on until it is stopped, with processes below it as a training run
has them: a child, a local Ray (its daemons), and a grandchild that left the process tree
(double fork, a session of its own) as a daemon may. The stack's tests deploy it.

It writes ``<FLAI_DATA_DIR>/stuck-<run id>.ready`` once all of them run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from prefect import flow
from prefect.runtime import flow_run

SLEEP = "import time; time.sleep(600)"
ESCAPE = "import os, time\nif os.fork():\n    os._exit(0)\nos.setsid()\ntime.sleep(600)"


@flow(name="stuck")
def stuck() -> None:
    import ray

    subprocess.Popen([sys.executable, "-c", SLEEP])
    subprocess.run([sys.executable, "-c", ESCAPE], check=True)
    ray.init(num_cpus=1, include_dashboard=False, _node_ip_address="127.0.0.1",
             object_store_memory=100 * 1024 * 1024,
             _temp_dir=tempfile.mkdtemp(prefix="flai-stuck-ray-"))
    (Path(os.environ["FLAI_DATA_DIR"]) / f"stuck-{flow_run.id}.ready").touch()
    time.sleep(600)
