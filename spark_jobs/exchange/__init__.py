"""Exchange packages from the lakehouse: extract from gold / silver, reconcile with gold, export (issue 28).

The pure-Python builder, verifier and delivery are ``smartrehab.exchange``; this package is the Spark side
that feeds them (``extract``), checks them against gold (``reconcile``) and runs the whole export with its
audit tables (``run``). The DAGs call it through ``smartrehab.exchange.jobs``.
"""
