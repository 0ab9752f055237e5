"""Full-ranking evaluation: metrics, the evaluation protocol, significance tests.

Example:
    >>> from contrec.evaluation import evaluate
    >>> table = evaluate(model, train, test, k=(10, 20))  # doctest: +SKIP
"""

from contrec.evaluation.full_ranking import evaluate, item_popularity, ranking_metrics

__all__ = ["evaluate", "ranking_metrics", "item_popularity"]
