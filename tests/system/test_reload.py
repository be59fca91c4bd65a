"""Hot-reloaded configuration files (system.kernel.reload): the mechanism under the access
policy and the LLM router, driven with a file of its own and a clock that moves when told."""

import logging
import os
from pathlib import Path

import pytest

from system.kernel.reload import HotReloaded

pytestmark = pytest.mark.embedded

logger = logging.getLogger("tests.reload")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def edit(path: Path, text: str) -> None:
    """Rewrite the file with an mtime a second later, even on coarse-timestamp filesystems."""
    stat = path.stat()
    path.write_text(text)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


@pytest.fixture
def number_file(tmp_path: Path) -> tuple[HotReloaded[int], Path, Clock]:
    """A file holding one integer, its holder (loaded with the clock) and the clock."""
    path = tmp_path / "number.txt"
    path.write_text("1")
    holder = HotReloaded(
        what="number",
        path=lambda: path,
        parse=lambda p: int(p.read_text()),
        errors=(ValueError,),
        logger=logger,
    )
    clock = Clock()
    holder.load(clock=clock)
    return holder, path, clock


def test_an_edit_is_picked_up_at_the_next_check(number_file):
    holder, path, clock = number_file
    edit(path, "2")
    clock.now += 1

    assert holder.current() == 2


def test_an_invalid_edit_keeps_the_last_good_value_and_is_logged_once(number_file, caplog):
    holder, path, clock = number_file
    edit(path, "two")

    with caplog.at_level(logging.ERROR, logger="tests.reload"):
        values = []
        for _ in range(3):
            clock.now += 1
            values.append(holder.current())

    assert values == [1, 1, 1]
    assert caplog.text.count("keeping the previous number") == 1
