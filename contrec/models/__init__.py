"""The recommenders: `contrastive.ContrastiveRecommender` and the baselines it is compared with.

Kept free of imports so that lower layers may reach `contrec.models.<module>` without a cycle.
"""
