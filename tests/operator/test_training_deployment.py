"""The deployment entry point's parameters: JSON, typed, with choices and bounds."""

from __future__ import annotations

from deployments.training import train


def test_parameters_are_json_with_choices_and_bounds_for_the_ui() -> None:
    """What the UI's run form and the API validate against."""
    schema = train.parameters.model_dump()
    properties = schema["properties"]
    assert set(properties) == {"dataset", "rounds", "model", "providers", "alpha", "mu", "server",
                               "epochs", "learning_rate", "target_accuracy", "seed"}
    assert properties["rounds"]["default"] == 5 and properties["rounds"]["minimum"] == 1
    definitions = schema["definitions"]
    assert definitions["Dataset"]["enum"] == ["heart", "census"]
    assert definitions["ModelKind"]["enum"] == ["logreg", "mlp"]
    assert definitions["ServerOptimiser"]["enum"] == ["fedavg", "fedavgm", "fedadagrad", "fedadam",
                                                      "fedyogi"]
