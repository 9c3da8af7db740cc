"""What a run produces: per-test records, metrics, baselines, MCAP recordings and bundles, HTML, plots.

Pure data and rendering, no pytest hooks (those are in :mod:`pytest_simtwin.plugin.reporting`). May import
``ros`` (recording), ``control.protocol``, ``_internal`` and ``errors``.
"""
