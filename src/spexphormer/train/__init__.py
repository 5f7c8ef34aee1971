"""Training: the shared loop, losses and metrics, schedules, checkpoints."""

from spexphormer.train.loop import FitResult, fit  # noqa: F401
from spexphormer.train.metrics import chance_level, compute_metric, mean_prediction, output_dim, roc_auc, task_loss  # noqa: F401
from spexphormer.train.schedule import cosine_with_warmup, temperature  # noqa: F401
