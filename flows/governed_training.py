"""A governed training run: the job a domain's DAO approved, trained, validated and reported.

The recipe: the chain's approval first (a task its DAO has not approved raises before any
actor starts); the job exactly as the voted document describes it, paid (every round valued
where the model allows and its contributions recorded); then the validation the DAO votes on
next: the final model's federated accuracy and AUC, and its fairness across the data set's
sensitive attribute, from securely summed counts only; the report stored and recorded on
chain with the model's CID.

A retried run resumes its rounds from the chain (``flows.fl_training``) and a run of a task
already trained records nothing again. The governance sync starts it through the
``governed-training/on-approval`` deployment, once per task.

    from flows.governed_training import governed_training
    governed_training("heart-logreg-3f2a")
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from actors.federation import federation_for
from contracts import keccak_id
from flai.datasets import Dataset, partitioning_for
from flai.learning.config import FitConfig, JobSpec, ModelKind
from flai.settings import get_settings
from flai.valuation.shapley import ExactShapley
from flows.fl_training import TrainingJob, fl_training
from tasks.chain import ledger
from tasks.evaluation import federated_evaluate
from tasks.fairness import evaluate_fairness
from tasks.governance import TRAINED_OR_LATER, approved_task, job_spec, record_validation
from tasks.selection import select_participants


def training_job(task_name: str, domain: str, spec: JobSpec) -> TrainingJob:
    """The job a task's document asks for, on the demo providers of its data set."""
    dataset = Dataset(spec.dataset)
    federation = federation_for(dataset, partitioning_for(dataset, spec.providers, spec.alpha,
                                                          spec.seed), get_settings())
    return TrainingJob(task_name, federation, spec.model, spec.rounds,
                       FitConfig(epochs=spec.epochs, learning_rate=spec.learning_rate), spec.mu,
                       seed=spec.seed, server=spec.server,
                       # Coalition utilities run a logistic regression on shares; an MLP's
                       # rounds pay by samples.
                       valuation=ExactShapley() if spec.model is ModelKind.LOGREG else None,
                       min_stake=spec.min_stake, governed_by=domain)


@flow(name="governed-training", flow_run_name="{task}")
def governed_training(task: str) -> dict[str, Any]:
    """Train, validate and report the approved task named ``task``."""
    approved = approved_task(task)
    if approved.state in TRAINED_OR_LATER:
        get_run_logger().info("task %s is %s on chain: trained already, nothing to do", task,
                              approved.state.name.lower())
        return {"task": task, "state": approved.state.name.lower(), "model_cid": approved.model_cid}
    job = training_job(task, approved.domain, job_spec(approved))
    result = fl_training(job)
    if result.rounds:
        final = result.final
        model_cid, metrics, evaluated, incarnations = final.model_cid, final.metrics, final.evaluated, None
    else:  # a retry that found every round on chain: evaluate the recorded model again
        selection = select_participants(job.federation)
        evaluation = federated_evaluate(job.federation, selection.participants,
                                        f"{task}/validation", result.global_vector, job.kind,
                                        job.seed, result.resumed_after, selection.incarnations)
        model_cid, metrics, evaluated = _last_model_cid(task), evaluation.metrics, evaluation.parties
        incarnations = selection.incarnations
    # Fairness over exactly the parties of the final model's evaluation: a sum over fewer would
    # reveal, by difference, the counts of those missing.
    fairness = evaluate_fairness(job.federation, evaluated, result.global_vector, job.kind,
                                 contribution_id=f"{task}/fairness", seed=job.seed,
                                 incarnations=incarnations)
    report_cid = record_validation(task, model_cid, metrics, fairness)
    get_run_logger().info(
        "task %s trained: accuracy %.4f, AUC %.4f, demographic-parity difference %s, "
        "equal-opportunity difference %s; report %s awaits its DAO's vote", task,
        metrics.accuracy, metrics.auc, fairness.demographic_parity_difference,
        fairness.equal_opportunity_difference, report_cid)
    return {"task": task, "state": "trained", "model_cid": model_cid, "report_cid": report_cid,
            "accuracy": metrics.accuracy, "auc": metrics.auc,
            "demographic_parity_difference": fairness.demographic_parity_difference,
            "equal_opportunity_difference": fairness.equal_opportunity_difference}


def _last_model_cid(task: str) -> str:
    """The model of the task's last recorded round (a retry that found every round on chain)."""
    chain = ledger()
    return chain.get_round(keccak_id(task), chain.round_count(keccak_id(task)) - 1).model_cid
