"""A bounded memory of recent remote answers, so a known visitor keeps their variant offline."""

import threading
from collections import OrderedDict

from splitwerk.evaluation import Assignment

REMEMBERED = "remembered"  # the reason of an answer taken from memory, not from the server


class RecentAssignments:
    """The last ``capacity`` answers by (visitor, experiment); the least recently used go.

    While the server cannot be asked, a visitor it enrolled in ``green`` must go on seeing
    ``green`` (their conversions still count there), not the control. Each entry costs about
    200 bytes, so the default 50,000 entries hold ~10 MB; ``capacity=0`` remembers nothing.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._answers: OrderedDict[tuple[str, str], Assignment] = OrderedDict()

    def remember(self, visitor: str, answers: dict[str, Assignment]) -> None:
        """Keep the server's answers for ``visitor`` (with the reason ``remembered``)."""
        if not self._capacity:
            return
        with self._lock:
            for experiment, answer in answers.items():
                if answer.variant is None:
                    continue  # an unknown experiment: the fallback is as good
                key = (visitor, experiment)
                self._answers[key] = Assignment(
                    answer.variant, answer.payload, answer.enrolled, REMEMBERED
                )
                self._answers.move_to_end(key)
            while len(self._answers) > self._capacity:
                self._answers.popitem(last=False)

    def recall(self, visitor: str, experiment: str) -> Assignment | None:
        """The last answer the server gave for this visitor and experiment, if still kept."""
        if not self._capacity:
            return None
        key = (visitor, experiment)
        with self._lock:
            answer = self._answers.get(key)
            if answer is not None:
                self._answers.move_to_end(key)
            return answer

    def reset(self) -> None:
        """Start over with a new lock (in a forked child); the answers stay valid."""
        self._lock = threading.Lock()
