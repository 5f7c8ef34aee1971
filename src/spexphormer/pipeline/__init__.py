"""The stages as library calls: estimate (stage 1), train_wide (stage 2), the Exphormer baseline,
the end-to-end run, and predictions."""

from spexphormer.pipeline.exphormer import train_exphormer  # noqa: F401
from spexphormer.pipeline.run import results_table, run, run_exphormer  # noqa: F401
from spexphormer.pipeline.stage1 import augment_graph, estimate  # noqa: F401
from spexphormer.pipeline.stage2 import train_wide  # noqa: F401
