"""Live security and treatment feeds: event contracts, contract checking and the feed simulator.

* :mod:`smartrehab.feeds.contracts` loads the versioned YAML contracts in ``contracts/``, checks raw
  messages against them (parsed event or a quarantine reason) and describes each feed's schema for Spark.
* :mod:`smartrehab.feeds.simulator` writes deterministic, realistic event streams (with injected flaws
  and a manifest of them) into the landing zone ``<landing_dir>/feeds/<feed>/<YYYYMMDD>/``.
"""
