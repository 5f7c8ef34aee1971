"""Both stages on ``torch.distributed``: data-parallel stage 2, node-sharded stage 1, the launcher.

See ``docs/scaling-out.md`` for the design beyond one machine.
"""

from spexphormer.distributed.world import (COMM, World, all_gather_rows, gather_rows, init_from_env, launched,
                                           shard_range, shutdown, world)

__all__ = ["COMM", "World", "all_gather_rows", "gather_rows", "init_from_env", "launched", "shard_range",
           "shutdown", "world"]
