"""Classification metrics from scikit-learn for LearnTests/ClassificationMetricsTests.

Run: python Tests/Fixtures/make_metrics_fixtures.py   (numpy, scikit-learn)
Writes Tests/Fixtures/Metrics/metrics.json: cases of (truth, predicted, probabilities) with
scikit-learn's accuracy, balanced accuracy, per-class recall / precision / F1 / specificity,
ROC AUC (binary; one-vs-rest macro for three classes), log loss and the confusion matrix;
also the macro averages and ROC curves (every threshold kept; one-vs-rest per class for three
classes) that CompareTests check `adwb compare`'s metrics against.
"""
import json
import os

import numpy as np
from sklearn import metrics


def case(name, truth, predicted, probabilities, classes):
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    p = np.asarray(probabilities, dtype=np.float32)
    k = len(classes)
    cm = metrics.confusion_matrix(truth, predicted, labels=classes)
    specificity = []
    for c in range(k):
        negatives = truth != classes[c]
        specificity.append(float(np.mean(predicted[negatives] != classes[c])))
    auc = metrics.roc_auc_score(truth, p[:, 1]) if k == 2 else metrics.roc_auc_score(truth, p, multi_class="ovr", average="macro", labels=classes)
    return {
        "name": name, "classes": classes, "truth": truth.tolist(), "predicted": predicted.tolist(),
        "probabilities": p.astype(float).tolist(),
        "accuracy": metrics.accuracy_score(truth, predicted),
        "balanced_accuracy": metrics.balanced_accuracy_score(truth, predicted),
        "recall": metrics.recall_score(truth, predicted, labels=classes, average=None, zero_division=np.nan).tolist(),
        "precision": metrics.precision_score(truth, predicted, labels=classes, average=None, zero_division=np.nan).tolist(),
        "f1": metrics.f1_score(truth, predicted, labels=classes, average=None, zero_division=np.nan).tolist(),
        "specificity": specificity,
        "roc_auc": float(auc),
        "log_loss": metrics.log_loss(truth, p.astype(np.float64), labels=classes),
        "confusion": cm.tolist(),
        "macro_precision": metrics.precision_score(truth, predicted, labels=classes, average="macro", zero_division=np.nan),
        "macro_f1": metrics.f1_score(truth, predicted, labels=classes, average="macro", zero_division=np.nan),
        "macro_recall": metrics.recall_score(truth, predicted, labels=classes, average="macro", zero_division=np.nan),
        "macro_specificity": float(np.mean(specificity)),
        "roc_curves": [roc(truth, p, classes, c) for c in ([1] if k == 2 else range(k))],
    }


def roc(truth, p, classes, c):
    fpr, tpr, _ = metrics.roc_curve(truth == classes[c], p[:, c], drop_intermediate=False)
    return {"positive": c, "fpr": fpr.tolist(), "tpr": tpr.tolist()}


rng = np.random.default_rng(7)
cases = []
# Binary with ties in the scores (probabilities rounded to one decimal).
truth = rng.integers(0, 2, 40)
score = np.clip(0.35 * truth + rng.uniform(0, 0.65, 40), 0, 1).round(1)
cases.append(case("binary_ties", truth, (score >= 0.5).astype(int), np.stack([1 - score, score], 1), [0, 1]))
# Imbalanced binary, a classifier that favours the majority.
truth = np.array([0] * 30 + [1] * 6)
score = np.clip(0.2 + 0.3 * truth + rng.normal(0, 0.15, 36), 0.01, 0.99)
cases.append(case("binary_imbalanced", truth, (score >= 0.5).astype(int), np.stack([1 - score, score], 1), [0, 1]))
# Three classes.
truth = rng.integers(0, 3, 60)
logits = rng.normal(0, 1, (60, 3))
logits[np.arange(60), truth] += 1.2
prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
cases.append(case("three_class", truth, prob.argmax(1), prob, [0, 1, 2]))

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Metrics", "metrics.json")
with open(out, "w") as f:
    json.dump({"generator": "make_metrics_fixtures.py", "cases": cases}, f, indent=1)
print("wrote", out)
