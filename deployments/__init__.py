"""How FLAI runs as a service: Prefect deployment entry points and the local stack.

``training.py`` holds the flows that ``prefect.yaml`` deploys (plain JSON parameters, so the
UI can start them); ``stack.py`` starts and stops the local stack (``flai up``).
"""
