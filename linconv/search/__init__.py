"""The Hypothesis layer: settings profiles (defined once), placing a drawn case on a device
(assuming away what the device cannot represent and known upstream bugs), and steering the search.

Used by the properties, calibration and the fault search alike. Imports :mod:`linconv.core`,
:mod:`linconv.lanes`, :mod:`linconv.known_bugs` and :mod:`linconv.measure`.
"""
