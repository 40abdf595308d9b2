"""The regression corpus: counterexamples kept as data, replayed on every run.

- :mod:`~linconv.corpus.store`: the Regression record, its JSON files, ids, reading and writing;
- :mod:`~linconv.corpus.legacy`: files of an older schema, read and converted;
- :mod:`~linconv.corpus.replay`: one stored case on one device, judged by its expectation;
- :mod:`~linconv.corpus.capture`: a failing property's exception turned into a pending case.

Imports :mod:`linconv.relations` and below.
"""

from linconv.corpus.store import *  # noqa: F403  (the corpus API is the store's)
from linconv.corpus.store import __all__  # noqa: F401
