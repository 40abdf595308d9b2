"""Lanes: how formulations run, never what they must equal.

A lane is one point of device x precision mode (x execution, x layout): the same relation is
checked in each, and each gets its own test id, database key, tally and timing row.

- :mod:`~linconv.lanes.devices`: which devices exist here, the one parser of device lists, what
  each device cannot represent;
- :mod:`~linconv.lanes.flags`: the precision flags in force (both torch API generations), the
  input rounding they allow, and contexts that pin them;
- :mod:`~linconv.lanes.modes`: the precision modes each device is checked under.

Imports :mod:`linconv.core` only.
"""
