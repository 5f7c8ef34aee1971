"""The start-up warning when a batch's receptive field B·Π(k+1) approaches the node count."""

import pytest

from spexphormer.sampling import receptive_field_warning


def test_warns_with_the_numbers():
    with pytest.warns(UserWarning, match=r"2,000·13·6·6·6 = 5,616,000 rows is 5.6x the 1,000,000 nodes"):
        msg = receptive_field_warning(2000, (12, 5, 5, 5), 1_000_000)
    assert "batch_size" in msg


def test_quiet_below_half_the_graph_or_when_one_batch_is_the_graph(recwarn):
    assert receptive_field_warning(256, (4, 4), 1_000_000) is None  # 6,400 rows
    assert receptive_field_warning(1000, (10, 10), 3_000_000) is None  # 121,000 rows
    assert receptive_field_warning(100_000, (12, 5, 5, 5), 10_000) is None  # B >= N: full batch
    assert receptive_field_warning(1000, (10, 10, 10), 7_600) is None  # a small graph (Actor's preset)
    with pytest.warns(UserWarning):  # the same batches on a graph where memory is the reason for them
        receptive_field_warning(1000, (10, 10, 10), 60_000)
    assert len(recwarn) == 0
