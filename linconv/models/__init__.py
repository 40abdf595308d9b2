"""Check a user's model: the relations at the layers, shapes and tensors it actually runs.

- :mod:`~linconv.models.load`: ``MODULE:FACTORY`` -> a model; the input; :class:`ModelError`;
- :mod:`~linconv.models.capture`: one forward with hooks, every Conv/Linear call recorded;
- :mod:`~linconv.models.layers`: each call (and each conv + Linear pair) as a case with its real tensors;
- :mod:`~linconv.models.check`: the relations that apply (from the registry), measured and timed;
- :mod:`~linconv.models.report`: the model report (report.json / report.md, docs/models.md);
- :mod:`~linconv.models.keep`: a failing layer kept: its tensors, and a corpus case where one reproduces it;
- :mod:`~linconv.models.builtin`: the built-in list checked in CI (torchvision, random init).

Imports :mod:`linconv.relations`, :mod:`linconv.timing`, :mod:`linconv.corpus`,
:mod:`linconv.runreport` (environment, Markdown helpers) and below.
"""
