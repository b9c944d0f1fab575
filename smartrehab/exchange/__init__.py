"""Data exchange with the Ministry of Justice and the police, procuratorate and courts (issue 28).

The specification is docs/exchange/ (packages.yaml is its machine-readable part). This package builds
signed BagIt packages from in-memory tables (``bag.build_package``), verifies them as a receiver would
(``verify.verify_bag``, ``verify.main``), delivers them to an outbox or over SFTP (``deliver.deliver``) and
generates the field dictionary (``dictionary``). Pure Python: no JVM.
"""
